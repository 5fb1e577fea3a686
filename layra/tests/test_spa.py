"""The web app is served at / and at every client-side route, with a strict CSP; API paths keep JSON errors."""

import pytest
from django.test import Client


@pytest.fixture
def dist(tmp_path, settings):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<!doctype html><script type="module" src="/assets/app-1.js"></script>')
    (tmp_path / "assets" / "app-1.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("outside the assets folder")
    settings.FRONTEND_DIST = tmp_path
    return tmp_path


@pytest.mark.parametrize("path", ["/", "/knowledge-bases", "/chat/abc123", "/login?next=/chat", "/administrator"])
def test_client_routes_get_index_html_with_a_strict_csp(dist, path):
    response = Client().get(path)
    assert response.status_code == 200
    assert b"/assets/app-1.js" in response.content
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'self'" in csp and "unsafe-inline" not in csp
    assert response["Cache-Control"] == "no-cache"


def test_assets_are_served_immutable_and_nothing_outside_them(dist):
    response = Client().get("/assets/app-1.js")
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"console.log(1)"
    assert "immutable" in response["Cache-Control"] and response["Content-Type"].startswith("text/javascript")
    assert Client().get("/assets/../secret.txt").status_code == 404
    assert Client().get("/assets/%2e%2e/secret.txt").status_code == 404
    assert Client().get("/assets/missing.js").status_code == 404


@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/nope", "/mcp/nope"])
def test_api_paths_keep_json_errors(dist, path):
    response = Client().get(path)
    assert response.status_code == 404 and response["Content-Type"] == "application/json"


def test_the_admin_stays_django(dist, db):
    assert Client().get("/admin/").status_code == 302  # to its login page, not the web app


def test_an_unbuilt_app_says_how_to_build_it(tmp_path, settings):
    settings.FRONTEND_DIST = tmp_path / "none"
    response = Client().get("/")
    assert response.status_code == 503 and b"make run" in response.content


def test_writes_to_client_routes_are_refused(dist):
    assert Client().post("/chat").status_code == 405
