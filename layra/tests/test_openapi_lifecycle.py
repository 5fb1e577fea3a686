"""The OpenAPI document describes the data-lifecycle routes and fields (account deletion, batches and jobs,
search filters, sign-in by email)."""

import pytest
from drf_spectacular.generators import SchemaGenerator


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _component(schema, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def _request_fields(schema, operation: dict) -> set[str]:
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return set(_component(schema, ref)["properties"])


def test_new_routes_are_documented(schema):
    paths = schema["paths"]
    delete_me = paths["/api/v1/auth/me/"]["delete"]
    assert {"202", "400", "401"} <= set(delete_me["responses"]) and _request_fields(schema, delete_me) == {"password"}
    batch = paths["/api/v1/uploads/{batch_id}/"]["get"]
    totals = _component(schema, batch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"])
    assert {"total", "queued", "running", "completed", "failed", "cancelled", "files"} <= set(totals["properties"])
    assert "404" in batch["responses"]
    tasks = paths["/api/v1/tasks/"]["get"]
    assert {"state", "knowledge_base_id", "page", "page_size"} <= {p["name"] for p in tasks["parameters"]}
    assert tasks["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("PaginatedTaskOutput")
    retry = paths["/api/v1/tasks/{task_id}/retry/"]["post"]
    assert {"200", "404", "409"} <= set(retry["responses"])


def test_new_fields_are_documented(schema):
    paths = schema["paths"]
    filters = {"file_ids", "filename", "uploaded_after", "uploaded_before"}
    assert filters <= _request_fields(schema, paths["/api/v1/search/"]["post"])
    assert filters <= _request_fields(schema, paths["/api/v1/conversations/{conversation_id}/messages/"]["post"])
    hit = schema["components"]["schemas"]["Hit"]["properties"]
    assert {"filename", "page_number", "image_url", "thumbnail_url", "snippet"} <= set(hit)
    upload = paths["/api/v1/knowledge-bases/{knowledge_base_id}/files/"]["post"]["responses"]["201"]
    item = _component(schema, upload["content"]["application/json"]["schema"]["items"]["$ref"])
    assert "batch_id" in item["properties"]
    assert {"filename", "batch_id"} <= set(schema["components"]["schemas"]["TaskOutput"]["properties"])
    login = paths["/api/v1/auth/login/"]["post"]
    assert "email" in _component(schema, login["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                                 )["properties"]["username"]["description"]
