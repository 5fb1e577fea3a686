"""Isolation, generated from the URL conf.

Every /api/v1/ route is found by walking django.urls.get_resolver(). A registry maps each URL kwarg
(knowledge_base_id, file_id, page_number, ...) to a factory that makes the object for a user through
the apps' public services and API. Then, for every route with an id and every method its view
implements: another user with the owner's ids gets 404, and the owner with random ids gets 404;
GET routes a user calls with their own ids never show another user's ids. A route or kwarg the
registry does not cover fails the coverage test, so a new endpoint cannot skip this suite.
"""

import json
import uuid
from dataclasses import dataclass, field

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.fake_llm import FakeLLM

API_PREFIX = "api/v1/"
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    template: str  # e.g. "api/v1/files/<str:file_id>/pages/<int:page_number>/image"
    name: str
    kwargs: tuple[str, ...]
    view: type = field(compare=False)

    @property
    def methods(self) -> list[str]:
        return [m for m in METHODS if hasattr(self.view, m)]

    def url(self, values: dict) -> str:
        path = self.template
        for kwarg in self.kwargs:
            start = path.index("<")
            end = path.index(">", start)
            assert path[start:end].endswith(":" + kwarg) or path[start + 1:end] == kwarg
            path = path[:start] + str(values[kwarg]) + path[end + 1:]
        return "/" + path


def _walk(patterns, prefix: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def api_routes() -> list[Route]:
    routes = []
    for template, pattern in _walk(get_resolver().url_patterns):
        if not template.startswith(API_PREFIX):
            continue
        if (pattern.name or "").endswith("-noslash") or pattern.name == "openai-not-found":
            continue  # a deprecated slash-less alias (the same view as its route, checked there), or a 404 answer
        view = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
        assert view is not None, f"{template}: not a class-based view; isolation cannot see its methods"
        routes.append(Route(template, pattern.name or "", tuple(pattern.pattern.converters), view))
    return routes


# --- the registry: how to make what each kwarg names, for one user -------------------------------------


class World:
    """Objects of one user, made through public services and the API, remembered by kwarg name."""

    def __init__(self, user, client, llm: FakeLLM, capture):
        self.user, self.client, self.llm, self.capture = user, client, llm, capture
        self.values: dict[str, object] = {}

    def get(self, kwarg: str):
        if kwarg not in self.values:
            self.values[kwarg] = KWARG_FACTORIES[kwarg](self)
        return self.values[kwarg]

    def ids(self) -> set[str]:
        return {v for k, v in self.values.items() if isinstance(v, str) and k not in SHARED_VALUES}


def _kb(world: World) -> str:
    from knowledge.services import knowledge_base_create

    return knowledge_base_create(user=world.user, name=f"kb of {world.user.username}").knowledge_base_id


def _ingested_file(world: World) -> dict:
    """Upload a one-page PDF through the API and run the pipeline eagerly on commit."""
    from knowledge import samples
    from tests.knowledge_helpers import uploaded

    kb_id = world.get("knowledge_base_id")
    pdf = samples.make_pdf([f"Private notes of {world.user.username} about isolation"])
    with world.capture(execute=True):
        response = world.client.post(f"/api/v1/knowledge-bases/{kb_id}/files/",
                                     {"files": [uploaded("private.pdf", pdf)]}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()[0]


def _file(world: World) -> str:
    item = _ingested_file(world)
    world.values["task_id"] = item["task_id"]
    world.values["batch_id"] = item["batch_id"]
    return item["file_id"]


def _task(world: World) -> str:
    world.get("file_id")
    return world.values["task_id"]


def _batch(world: World) -> str:
    world.get("file_id")
    return world.values["batch_id"]


def _page(world: World) -> int:
    from knowledge.documents import File

    file = File.objects(file_id=world.get("file_id")).first()
    assert file is not None and file.images, "the ingested file has no pages"
    return file.images[0].page_number


def _model(world: World) -> str:
    from chat.services import model_create

    return model_create(user=world.user, model_name="vision-model", model_url=world.llm.url, api_key="sk-test-1234",
                        select=True).model_id


def _conversation(world: World) -> str:
    from chat.services import conversation_create

    conversation_id = conversation_create(user=world.user, conversation_name="private chat").conversation_id
    world.get("model_id")
    response = world.client.post(f"/api/v1/conversations/{conversation_id}/messages?stream=false",
                                 {"question": "what is private?"}, format="json")
    assert response.status_code == 200, response.content
    world.values["message_id"] = response.json().get("message_id")
    return conversation_id


def _api_key(world: World) -> str:
    from accounts.services import api_key_create

    created = api_key_create(user=world.user, name="isolation key")
    key = created[0] if isinstance(created, tuple) else created
    return str(getattr(key, "key_id", None) or key.pk)


def _workflow(world: World) -> str:
    from tests.workflows_helpers import chain, node

    nodes, edges = chain(node("start", "start"), node("v", "variable", assignments={"secret": "'private'"}),
                         node("end", "end", outputs={"secret": "secret"}))
    response = world.client.post("/api/v1/workflows/", {"workflow_name": "private flow", "nodes": nodes,
                                                        "edges": edges}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["workflow_id"]


def _run(world: World) -> str:
    with world.capture(execute=True):
        response = world.client.post(f"/api/v1/workflows/{world.get('workflow_id')}/runs", {"inputs": {}},
                                     format="json")
    assert response.status_code == 202, response.content
    return response.json()["run_id"]


def _custom_node(world: World) -> str:
    from workflows.services import custom_node_save

    name = f"private_{world.user.username}"
    custom_node_save(user=world.user, name=name, node_type="variable", data={"assignments": {"y": "1"}})
    return name


def _chatflow(world: World) -> str:
    from workflows.services import chatflow_create

    return chatflow_create(user=world.user, workflow_id=world.get("workflow_id"),
                           chatflow_name="private chatflow").chatflow_id


def _trashed_item(world: World) -> str:
    """A knowledge base in the trash (trash/<kind>/<item_id>/...; `kind` is knowledge_base)."""
    from knowledge.services import knowledge_base_create, knowledge_base_delete

    kb = knowledge_base_create(user=world.user, name=f"trashed kb of {world.user.username}")
    knowledge_base_delete(user=world.user, knowledge_base_id=kb.knowledge_base_id)
    return kb.knowledge_base_id


SHARED_VALUES = {"kind"}  # the same for every user: not an id of theirs

KWARG_FACTORIES = {
    "knowledge_base_id": _kb,
    "file_id": _file,
    "task_id": _task,
    "batch_id": _batch,
    "page_number": _page,
    "model_id": _model,
    "conversation_id": _conversation,
    "key_id": _api_key,
    "workflow_id": _workflow,
    "run_id": _run,
    "name": _custom_node,  # custom-nodes/<name>/: names are per user
    "chatflow_id": _chatflow,
    "kind": lambda world: "knowledge_base",  # trash/<kind>/<item_id>/: the kinds are the same for every user
    "item_id": _trashed_item,
}


def _random(kwarg: str):
    return 9999 if kwarg == "page_number" else str(uuid.uuid4())


# Bodies that pass each view's input validation, so the ownership check is what answers.
def _bodies(world: World) -> dict[tuple[str, str], dict]:
    from knowledge import samples
    from tests.knowledge_helpers import uploaded

    def pdf():
        return {"files": [uploaded("x.pdf", samples.make_pdf(["x"]))]}

    return {
        ("knowledge-base", "patch"): {"json": {"knowledge_base_name": "stolen"}},
        ("knowledge-base-files", "post"): {"multipart": pdf},
        ("model-detail", "put"): {"json": {"model_name": "stolen", "model_url": world.llm.url}},
        ("model-detail", "patch"): {"json": {"model_name": "stolen"}},
        ("conversation-detail", "patch"): {"json": {"conversation_name": "stolen"}},
        ("conversation-messages", "post"): {"json": {"question": "leak?"}},
        ("conversation-files", "post"): {"multipart": pdf},
        ("workflow-detail", "put"): {"json": {"version": 1, "workflow_name": "stolen"}},
        ("workflow-detail", "patch"): {"json": {"version": 1, "workflow_name": "stolen"}},
        ("run-input", "post"): {"json": {"action": "continue"}},
        ("chatflow-message", "post"): {"json": {"message": "leak?"}},
    }


def _call(client, method: str, url: str, body: dict | None):
    body = body or {}
    if "multipart" in body:
        return getattr(client, method)(url, body["multipart"](), format="multipart")
    return getattr(client, method)(url, body.get("json", {}), format="json")


def _text(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


@pytest.fixture
def llm():
    with FakeLLM() as server:
        yield server


@pytest.fixture
def worlds(api_client, other_client, user, other_user, llm, django_capture_on_commit_callbacks, settings):
    settings.RATE_LIMIT_ENABLED = False
    kwargs = sorted({k for r in api_routes() for k in r.kwargs if k in KWARG_FACTORIES})
    owner = World(user, api_client, llm, django_capture_on_commit_callbacks)
    intruder = World(other_user, other_client, llm, django_capture_on_commit_callbacks)
    for world in (owner, intruder):
        for kwarg in kwargs:
            world.get(kwarg)
    return owner, intruder


# --- tests -----------------------------------------------------------------------------------------


def test_registry_covers_every_api_route_kwarg():
    routes = api_routes()
    assert len(routes) >= 20, [r.template for r in routes]
    missing = {f"{r.template} -> {k}" for r in routes for k in r.kwargs if k not in KWARG_FACTORIES}
    assert not missing, f"add a factory for these URL kwargs to KWARG_FACTORIES: {sorted(missing)}"
    unused = set(KWARG_FACTORIES) - {k for r in routes for k in r.kwargs}
    assert not unused, f"registry has kwargs no route uses any more: {sorted(unused)}"


def test_every_route_is_protected_or_public_by_name():
    """Anonymous callers get 401 everywhere except the routes that are public on purpose."""
    from rest_framework.test import APIClient

    public = {"api-root", "auth-register", "auth-login", "auth-refresh", "auth-logout", "health-live",
              "health-ready"}
    client = APIClient()
    leaks = []
    for route in api_routes():
        if route.name in public:
            continue
        url = route.url({k: _random(k) for k in route.kwargs})
        for method in route.methods:
            response = getattr(client, method)(url, {}, format="json")
            if response.status_code != 401:
                leaks.append(f"{method.upper()} {url}: {response.status_code}")
    assert not leaks, leaks


def test_other_users_ids_and_random_ids_are_404_on_every_route_and_method(worlds):
    owner, intruder = worlds
    bodies = _bodies(owner)
    probes, failures = 0, []
    routes = [r for r in api_routes() if r.kwargs]
    for route in routes:
        owners_values = {k: owner.get(k) for k in route.kwargs}
        random_values = {k: _random(k) for k in route.kwargs}
        for method in route.methods:
            body = bodies.get((route.name, method))
            for who, client, values in (("other user", intruder.client, owners_values),
                                        ("owner, random id", owner.client, random_values),
                                        ("other user, random id", intruder.client, random_values)):
                url = route.url(values)
                response = _call(client, method, url, body)
                probes += 1
                text = _text(response)
                if response.status_code != 404:
                    failures.append(f"{method.upper()} {url} as {who}: {response.status_code} {text[:200]}")
                    continue
                if json.loads(text).get("error", {}).get("code") != "not_found":
                    failures.append(f"{method.upper()} {url} as {who}: 404 without the error shape: {text[:200]}")
    assert probes >= 3 * len(routes), probes
    print(f"isolation: {len(routes)} routes with ids, {probes} cross-user/random-id probes")
    assert not failures, "\n".join(failures)

    # Nothing the intruder did touched the owner's objects: every GET still answers the owner.
    for route in routes:
        if "get" in route.methods:
            url = route.url({k: owner.get(k) for k in route.kwargs})
            response = owner.client.get(url)
            assert response.status_code == 200, f"GET {url} as owner after the probes: {response.status_code}"
            _text(response)


def test_get_routes_never_show_another_users_ids(worlds):
    owner, intruder = worlds
    owners_ids = owner.ids() | {owner.user.username}
    failures, probed = [], 0
    for route in api_routes():
        if "get" not in route.methods or route.name.startswith("health"):
            continue
        url = route.url({k: intruder.get(k) for k in route.kwargs})
        response = intruder.client.get(url)
        probed += 1
        text = _text(response)
        if response.status_code >= 400:
            failures.append(f"GET {url} (own ids): {response.status_code} {text[:200]}")
        leaked = sorted(i for i in owners_ids if i and i in text)
        if leaked:
            failures.append(f"GET {url} shows another user's ids {leaked}")
    assert probed >= 10
    assert not failures, "\n".join(failures)


def test_search_with_another_users_knowledge_base_is_404(worlds):
    owner, intruder = worlds
    routes = {r.name: r for r in api_routes()}
    search = next((r for r in routes.values() if r.template == API_PREFIX + "search/"), None)
    if search is None:
        pytest.skip("search/ is not routed in this checkout")
    body = {"query": "private notes", "knowledge_base_ids": [owner.get("knowledge_base_id")], "top_k": 3}
    response = intruder.client.post("/" + search.template, body, format="json")
    assert response.status_code == 404, response.content
    assert owner.get("file_id") not in response.content.decode()
