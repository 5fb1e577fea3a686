"""Every GET list under /api/v1/ answers a page {count, next, previous, results}, found by walking the URL conf
and the schema: one object of each kind is made for a user (tests/test_isolation.py's registry), then each list
is read whole, one item a page, and past its last page."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.fake_llm import FakeLLM
from tests.test_isolation import World, api_routes

pytestmark = pytest.mark.django_db

PAGE_KEYS = {"count", "next", "previous", "results"}


def _schema_path(template: str) -> str:
    path = "/" + template
    while "<" in path:
        start, end = path.index("<"), path.index(">")
        path = path[:start] + "{" + path[start + 1:end].split(":")[-1] + "}" + path[end + 1:]
    return path


def _list_routes():
    """Routes whose GET the schema documents as a page (test_openapi checks none is a bare array)."""
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    routes = []
    for route in api_routes():
        get = paths.get(_schema_path(route.template), {}).get("get")
        schema = (get or {}).get("responses", {}).get("200", {}).get("content", {}).get("application/json", {})
        if schema.get("schema", {}).get("$ref", "").startswith("#/components/schemas/Paginated"):
            routes.append(route)
    return routes


def test_every_get_list_answers_a_page(api_client, user, django_capture_on_commit_callbacks, settings):
    settings.RATE_LIMIT_ENABLED = False
    routes = _list_routes()
    names = {route.name for route in routes}
    assert {"auth-api-keys", "knowledge-bases", "knowledge-base-files", "model-list", "conversation-list",
            "conversation-messages", "workflow-list", "workflow-runs", "custom-node-list", "chatflow-list",
            "trash", "file-versions"} <= names
    with FakeLLM() as llm:
        world = World(user, api_client, llm, django_capture_on_commit_callbacks)
        for kwarg in ("knowledge_base_id", "file_id", "key_id", "conversation_id", "run_id", "name", "chatflow_id",
                      "item_id"):
            world.get(kwarg)
        for route in routes:
            url = route.url({k: world.get(k) for k in route.kwargs})
            body = api_client.get(url).json()
            assert set(body) == PAGE_KEYS, (url, body)
            assert body["count"] >= 1 and len(body["results"]) == min(body["count"], 20), (url, body)
            one = api_client.get(url, {"page_size": 1}).json()
            assert len(one["results"]) == 1 and one["previous"] is None, (url, one)
            assert (one["next"] is not None) == (body["count"] > 1), (url, one)
            past = api_client.get(url, {"page": body["count"] + 1, "page_size": 1})
            assert past.status_code == 404 and past.json()["error"]["code"] == "not_found", url


def test_page_size_has_a_maximum(api_client, user, monkeypatch):
    from layra.pagination import PagePagination
    from workflows.services import custom_node_save

    for index in range(3):
        custom_node_save(user=user, name=f"node{index}", node_type="variable", data={"assignments": {"y": "1"}})
    monkeypatch.setattr(PagePagination, "max_page_size", 2)
    body = api_client.get("/api/v1/custom-nodes/", {"page_size": 1000}).json()
    assert body["count"] == 3 and len(body["results"]) == 2
