"""The OpenAPI document's conventions (layra/openapi.py): every operation summarised and tagged by its app, every
error response in the one Error shape, SSE operations typed as event streams with their events named, and the
slash-less aliases deprecated."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from layra.errors import error_body
from layra.openapi import ERROR_REF, TAGS
from layra.routes import is_exempt

OPENAI_ERROR_REF = {"$ref": "#/components/schemas/OpenAIError"}

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_every_operation_has_a_summary_and_an_app_tag(schema):
    tags = {tag["name"] for tag in TAGS}
    unsummarised = [f"{m.upper()} {p}" for p, m, op in _operations(schema) if not op.get("summary")]
    assert not unsummarised, unsummarised
    assert {t for _p, _m, op in _operations(schema) for t in op["tags"]} == tags
    assert all(len(op["tags"]) == 1 for _p, _m, op in _operations(schema))


def test_every_error_response_is_the_error_component(schema):
    wrong, operations = [], 0
    for path, method, operation in _operations(schema):
        operations += 1
        statuses = [s for s in operation["responses"] if s.startswith("4")]
        if not statuses:
            wrong.append(f"{method.upper()} {path}: no 4xx documented")
        for status in statuses:
            content = operation["responses"][status].get("content", {})
            expected = OPENAI_ERROR_REF if is_exempt(path) else ERROR_REF  # OpenAI's error object there
            if content.get("application/json", {}).get("schema") != expected:
                wrong.append(f"{method.upper()} {path} {status}: {content}")
    assert operations > 60
    assert not wrong, "\n".join(wrong)


def test_error_component_is_the_handlers_shape(schema):
    component = schema["components"]["schemas"]["Error"]
    body = error_body("not_found", "Not found.")
    assert set(component["properties"]) == set(body) == set(component["required"])
    inner = component["properties"]["error"]
    assert set(inner["properties"]) == set(body["error"]) == set(inner["required"])


def test_protected_operations_document_401_and_routes_with_ids_404(schema):
    me = schema["paths"]["/api/v1/auth/me/"]["get"]["responses"]
    assert {"401", "429", "503"} <= set(me)
    assert "404" in schema["paths"]["/api/v1/files/{file_id}/"]["get"]["responses"]
    upload = schema["paths"]["/api/v1/knowledge-bases/{knowledge_base_id}/files/"]["post"]["responses"]
    assert {"400", "413", "415"} <= set(upload)


@pytest.mark.parametrize(("path", "method", "events"), [
    ("/api/v1/tasks/{task_id}/events/", "get", ["progress", "end", "timeout"]),
    ("/api/v1/runs/{run_id}/events/", "get", ["run_started", "node_started", "node_output", "node_finished",
                                              "node_error", "run_paused", "run_waiting_input", "run_finished"]),
    ("/api/v1/conversations/{conversation_id}/messages/", "post", ["citations", "token", "done", "error"]),
])
def test_sse_operations_are_event_streams_with_their_events_named(schema, path, method, events):
    operation = schema["paths"][path][method]
    stream = operation["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert stream["properties"]["event"]["enum"] == events
    assert operation["responses"]["404"]["content"]["text/event-stream"]["schema"]["properties"]["event"]["enum"] == [
        "error"]  # an error before the stream opens is one `error` event to a client that asked for events
    missing = [name for name in events if f"`{name}`" not in operation["description"]]
    assert not missing, operation["description"]


def test_slashless_aliases_are_deprecated_and_routes_are_not(schema):
    aliases = [p for p in schema["paths"] if not p.endswith("/") and not is_exempt(p)]
    assert "/api/v1/auth/login" in aliases and len(aliases) >= 20
    for path in aliases:
        assert path + "/" in schema["paths"], f"{path}: an alias of no route"
        for method, operation in schema["paths"][path].items():
            assert operation.get("deprecated") is True, f"{method.upper()} {path}"
            assert operation["summary"] == schema["paths"][path + "/"][method]["summary"]
    assert not [f"{m} {p}" for p, m, op in _operations(schema) if p.endswith("/") and op.get("deprecated")]


def test_lists_are_pages_in_the_schema(schema):
    """No GET answers a bare array: each list is {count, next, previous, results} (tests/test_pagination.py
    checks the answers)."""
    bare = []
    for path, method, operation in _operations(schema):
        body = operation["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
        if method == "get" and body.get("type") == "array":
            bare.append(path)
    assert not bare, bare
    keys = schema["components"]["schemas"]["PaginatedWorkflowOutput"]["properties"]
    assert set(keys) == {"count", "next", "previous", "results"}


def test_the_trash_versions_and_keep_both_are_documented(schema):
    paths, components = schema["paths"], schema["components"]["schemas"]
    assert paths["/api/v1/trash/"]["get"]["operationId"] == "trash_list"
    restore = paths["/api/v1/trash/{kind}/{item_id}/restore/"]["post"]
    kind = next(p for p in restore["parameters"] if p["name"] == "kind")
    assert sorted(kind["schema"]["enum"]) == ["conversation", "file", "knowledge_base", "workflow"]
    assert {"404", "409"} <= set(restore["responses"])
    assert "204" in paths["/api/v1/trash/{kind}/{item_id}/"]["delete"]["responses"]
    assert set(components["TrashItemOutput"]["properties"]) == {
        "kind", "id", "name", "deleted_at", "purge_after", "knowledge_base_id", "replaced_by"}
    assert {"document_id", "version", "replaces"} <= set(components["FileOutput"]["properties"])
    versions = paths["/api/v1/files/{file_id}/versions/"]["get"]["responses"]["200"]["content"]["application/json"]
    assert versions["schema"]["$ref"] == "#/components/schemas/PaginatedFileVersionOutput"
    upload = paths["/api/v1/knowledge-bases/{knowledge_base_id}/files/"]["post"]
    assert "keep_both" in {p["name"] for p in upload["parameters"]}
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "keep_both" in components[form]["properties"]
    for path in ("/api/v1/knowledge-bases/{knowledge_base_id}/", "/api/v1/files/{file_id}/",
                 "/api/v1/conversations/{conversation_id}/", "/api/v1/workflows/{workflow_id}/"):
        delete = paths[path]["delete"]
        assert "trash" in delete["summary"] and "trash" in delete["responses"]["204"]["description"], path
