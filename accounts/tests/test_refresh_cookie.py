"""The browser's refresh path: an HttpOnly SameSite=Strict cookie, spent only with the CSRF token repeated."""

from rest_framework.test import APIClient

from accounts.api.cookies import CSRF_COOKIE, REFRESH_COOKIE
from accounts.tests.conftest import PASSWORD, bearer

REFRESH = "/api/v1/auth/refresh"


def _cookie_login(client, user):
    response = client.post("/api/v1/auth/login", {"username": user.username, "password": PASSWORD, "cookie": True},
                           format="json")
    assert response.status_code == 200, response.content
    return response


def test_cookie_login_hides_the_refresh_token_from_scripts(anon_client, user):
    response = _cookie_login(anon_client, user)
    assert response.json()["refresh"] == "" and response.json()["access"]
    refresh = response.cookies[REFRESH_COOKIE]
    assert refresh["httponly"] and refresh["samesite"] == "Strict" and refresh["path"] == "/api/v1/auth/"
    csrf = response.cookies[CSRF_COOKIE]
    assert not csrf["httponly"] and csrf["samesite"] == "Strict" and len(csrf.value) >= 32


def test_cookie_refresh_needs_the_csrf_header_and_rotates(anon_client, user):
    _cookie_login(anon_client, user)
    first_refresh = anon_client.cookies[REFRESH_COOKIE].value
    assert anon_client.post(REFRESH, {}, format="json").status_code == 403
    wrong = anon_client.post(REFRESH, {}, format="json", HTTP_X_CSRF_TOKEN="not-the-cookie")
    assert wrong.status_code == 403
    csrf = anon_client.cookies[CSRF_COOKIE].value
    ok = anon_client.post(REFRESH, {}, format="json", HTTP_X_CSRF_TOKEN=csrf)
    assert ok.status_code == 200, ok.content
    assert ok.json()["refresh"] == "" and ok.cookies[REFRESH_COOKIE].value != first_refresh
    assert bearer(APIClient(), ok.json()["access"]).get("/api/v1/auth/me").status_code == 200


def test_no_cookie_and_no_body_is_400(anon_client):
    assert anon_client.post(REFRESH, {}, format="json").status_code == 400


def test_logout_clears_the_cookies(anon_client, user):
    access = _cookie_login(anon_client, user).json()["access"]
    response = bearer(anon_client, access).post("/api/v1/auth/logout")
    assert response.status_code == 204
    assert response.cookies[REFRESH_COOKIE].value == "" and response.cookies[CSRF_COOKIE].value == ""
