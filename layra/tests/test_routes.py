"""The routing conventions: one trailing-slash rule with slash-less aliases (same view, no redirect), the API root,
and JSON 404/405 under /api/v1/."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from layra.routes import is_exempt

pytestmark = pytest.mark.django_db


def _api_templates(patterns=None, prefix=""):
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from _api_templates(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and (prefix + str(entry.pattern)).startswith("api/v1/"):
            yield prefix + str(entry.pattern), entry


def test_every_route_ends_with_a_slash_or_is_the_alias_of_one():
    routes = dict(_api_templates())
    for template, pattern in routes.items():
        if template.endswith("/") or is_exempt(template):
            continue  # /api/v1/openai/ has OpenAI's paths (DECISIONS)
        route = routes.get(template + "/")
        assert route is not None, f"{template}: no slash and no route with one"
        assert pattern.callback.view_class is route.callback.view_class, template
        assert pattern.name == f"{route.name}-noslash"


def test_slashless_alias_answers_a_post_itself_without_redirecting(anon_client):
    from tests.factories import UserFactory

    UserFactory(username="alias-user", password="correct-horse-battery")
    body = {"username": "alias-user", "password": "correct-horse-battery"}
    for url in ("/api/v1/auth/login", "/api/v1/auth/login/"):
        response = anon_client.post(url, body, format="json")
        assert response.status_code == 200, (url, response.content)
        assert response.json()["access"]


def test_api_root_lists_the_resources(anon_client, api_client):
    response = anon_client.get("/api/v1/")
    assert response.status_code == 200
    resources = response.json()["resources"]
    assert {"knowledge_bases", "search", "conversations", "models", "workflows", "chatflows", "api_keys",
            "schema", "docs"} <= set(resources)
    assert resources["knowledge_bases"] == "http://testserver/api/v1/knowledge-bases/"
    assert resources["openai_models"] == "http://testserver/api/v1/openai/models"
    assert resources["mcp"] == "http://testserver/mcp"
    for name, url in resources.items():
        assert api_client.get(url.removeprefix("http://testserver")).status_code != 404, name


def test_unknown_route_under_api_v1_is_a_json_404(api_client):
    for url in ("/api/v1/no-such-thing/", "/api/v1/knowledge-bases/x/files/y/z"):
        response = api_client.get(url)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] == "not_found"


def test_wrong_method_under_api_v1_is_a_json_405(api_client):
    response = api_client.delete("/api/v1/knowledge-bases/")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"code": "method_not_allowed", "message": 'Method "DELETE" not allowed.',
                                         "details": {}}}


def test_unknown_route_under_mcp_is_a_json_404(anon_client):
    response = anon_client.get("/mcp/no-such-thing")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
