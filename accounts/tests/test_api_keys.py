import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey, AuditLog
from accounts.tests.conftest import bearer

pytestmark = pytest.mark.django_db

KEYS = "/api/v1/auth/api-keys/"


@pytest.fixture
def client(anon_client, tokens):
    return bearer(anon_client, tokens["access"])


def test_create_shows_key_once_and_stores_only_its_hash(client, user):
    response = client.post(KEYS, {"name": "ci"}, format="json")
    assert response.status_code == 201
    body = response.json()
    key = body["key"]
    assert key.startswith("lyr_") and body["masked_key"].endswith("…") and key not in body["masked_key"]
    record = ApiKey.objects.get(key_id=body["id"])
    assert key not in (record.key_hash, record.prefix) and record.user == user
    listing = client.get(KEYS).json()["results"]
    assert [k["id"] for k in listing] == [body["id"]] and "key" not in listing[0]
    assert key not in str(listing)
    assert AuditLog.objects.filter(action="api_key.create", resource_id=body["id"]).exists()


@pytest.mark.parametrize("header", ["authorization", "bearer", "x-api-key"])
def test_key_authenticates_with_any_of_its_headers(client, user, header):
    key = client.post(KEYS, {"name": "ci"}, format="json").json()["key"]
    other = APIClient()
    if header == "authorization":
        other.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    elif header == "bearer":  # as OpenAI-style clients send it
        other.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    else:
        other.credentials(HTTP_X_API_KEY=key)
    response = other.get("/api/v1/auth/me")
    assert response.status_code == 200 and response.json()["username"] == user.username
    assert ApiKey.objects.get().last_used_at is not None


def test_revoked_or_unknown_key_is_401(client):
    created = client.post(KEYS, {"name": "ci"}, format="json").json()
    assert client.delete(f"{KEYS}{created['id']}/").status_code == 204
    other = APIClient()
    other.credentials(HTTP_X_API_KEY=created["key"])
    assert other.get("/api/v1/auth/me").status_code == 401
    other.credentials(HTTP_X_API_KEY="lyr_made-up")
    assert other.get("/api/v1/auth/me").status_code == 401
    assert client.get(KEYS).json()["results"] == []
    assert AuditLog.objects.filter(action="api_key.revoke", resource_id=created["id"]).exists()


def test_wrong_bearer_api_key_is_401_in_the_error_shape(client):
    client.post(KEYS, {"name": "ci"}, format="json")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION="Bearer lyr_made-up")
    response = other.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "authentication_failed", "message": "API key is invalid or revoked.",
                                         "details": {}}}


def test_jwt_in_bearer_still_authenticates(client, user):
    response = client.get("/api/v1/auth/me/")
    assert response.status_code == 200 and response.json()["username"] == user.username


def test_expired_key_is_401(client):
    from datetime import timedelta

    from django.utils import timezone

    created = client.post(KEYS, {"name": "ci", "expires_in_days": 1}, format="json").json()
    ApiKey.objects.filter(key_id=created["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    other = APIClient()
    other.credentials(HTTP_X_API_KEY=created["key"])
    assert other.get("/api/v1/auth/me").status_code == 401


def test_other_users_key_is_404(client, other_client):
    created = client.post(KEYS, {"name": "mine"}, format="json").json()
    assert other_client.get(f"{KEYS}{created['id']}/").status_code == 404
    assert other_client.delete(f"{KEYS}{created['id']}/").status_code == 404
    assert ApiKey.objects.get(key_id=created["id"]).revoked_at is None
    assert client.get(f"{KEYS}{created['id']}/").status_code == 200


def test_name_is_required(client):
    response = client.post(KEYS, {}, format="json")
    assert response.status_code == 400 and "name" in response.json()["error"]["details"]


def test_an_api_key_cannot_manage_api_keys(client):
    key = client.post(KEYS, {"name": "ci"}, format="json").json()["key"]
    other = APIClient()
    other.credentials(HTTP_X_API_KEY=key)
    assert other.post(KEYS, {"name": "more"}, format="json").status_code == 401
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert other.post(KEYS, {"name": "more"}, format="json").status_code == 401
    assert ApiKey.objects.count() == 1


def test_password_change_revokes_every_api_key_and_other_sessions(client, user, login):
    from accounts.models import LoginSession
    from accounts.tests.conftest import PASSWORD

    keys = [client.post(KEYS, {"name": name}, format="json").json()["key"] for name in ("ci", "laptop")]
    elsewhere = login(user.username).json()  # another login session of the same user
    keyed = APIClient()
    keyed.credentials(HTTP_X_API_KEY=keys[0])
    assert keyed.get("/api/v1/auth/me").status_code == 200
    response = client.post("/api/v1/auth/password", {"current_password": PASSWORD,
                                                    "new_password": "a-new-Long-enough-pass"}, format="json")
    assert response.status_code == 204, response.content
    for key in keys:
        keyed.credentials(HTTP_X_API_KEY=key)
        assert keyed.get("/api/v1/auth/me").status_code == 401
    assert ApiKey.objects.filter(user=user, revoked_at__isnull=True).count() == 0
    assert bearer(APIClient(), elsewhere["access"]).get("/api/v1/auth/me").status_code == 401
    assert LoginSession.objects.get(session_id=elsewhere["session_id"]).revoke_reason == "password_change"
    assert client.get("/api/v1/auth/me").status_code == 200  # the session that changed it stays
    change = AuditLog.objects.get(action="password.change")
    assert change.details["api_keys_revoked"] == 2


def test_a_password_set_in_the_admin_revokes_keys_and_sessions(client, user, tokens, admin_client):
    from accounts.models import LoginSession

    key = client.post(KEYS, {"name": "ci"}, format="json").json()["key"]
    response = admin_client.post(f"/admin/accounts/user/{user.pk}/password/", {
        "password1": "an-admin-Set-pass", "password2": "an-admin-Set-pass", "usable_password": "true"})
    assert response.status_code == 302, response.content[:2000]
    keyed = APIClient()
    keyed.credentials(HTTP_X_API_KEY=key)
    assert keyed.get("/api/v1/auth/me").status_code == 401
    assert client.get("/api/v1/auth/me").status_code == 401
    assert LoginSession.objects.get(session_id=tokens["session_id"]).revoke_reason == "password_set_by_admin"
    assert AuditLog.objects.get(action="password.set_by_admin").details == {"sessions_revoked": 1,
                                                                             "api_keys_revoked": 1}
