import json

import jwt
import pytest
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from rest_framework.test import APIClient

from accounts.models import AuditLog, LoginSession, RefreshToken, User
from accounts.tests.conftest import PASSWORD, bearer
from layra.redis import redis_client

pytestmark = pytest.mark.django_db

ME = "/api/v1/auth/me"


def _error(response):
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


# --- register -------------------------------------------------------------------


def test_register_creates_user_with_argon2_hash(anon_client):
    response = anon_client.post("/api/v1/auth/register",
                                {"username": "alice", "password": "a-Long-enough-pass", "email": "a@example.com"},
                                format="json")
    assert response.status_code == 201
    assert response.json()["username"] == "alice" and "password" not in response.json()
    user = User.objects.get(username="alice")
    assert user.password.startswith("argon2$") and user.check_password("a-Long-enough-pass")
    assert AuditLog.objects.filter(action="user.register", user=user).exists()


def test_duplicate_username_is_409(anon_client, user):
    for name in (user.username, user.username.upper()):
        response = anon_client.post("/api/v1/auth/register", {"username": name, "password": "a-Long-enough-pass"},
                                    format="json")
        assert response.status_code == 409
        assert _error(response)["code"] == "conflict"


@pytest.mark.parametrize("password", ["short", "password", "12345678901", None])
def test_weak_or_missing_password_is_400_naming_the_field(anon_client, password):
    payload = {"username": "bob"} | ({"password": password} if password is not None else {})
    response = anon_client.post("/api/v1/auth/register", payload, format="json")
    assert response.status_code == 400
    assert "password" in _error(response)["details"]
    assert not User.objects.filter(username="bob").exists()


def test_malformed_json_is_400(anon_client):
    for url in ("/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/refresh"):
        response = anon_client.post(url, data='{"username": "x", ', content_type="application/json")
        assert response.status_code == 400
        assert _error(response)["code"] == "parse_error"


# --- login ---------------------------------------------------------------------


def test_login_returns_tokens_that_authenticate(anon_client, user, login):
    response = login(user.username, HTTP_USER_AGENT="pytest-agent")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == int(settings.JWT_ACCESS_TTL.total_seconds())
    me = bearer(anon_client, body["access"]).get(ME)
    assert me.status_code == 200 and me.json()["username"] == user.username
    session = LoginSession.objects.get(session_id=body["session_id"])
    assert session.user == user and session.user_agent == "pytest-agent" and session.ip == "127.0.0.1"
    assert RefreshToken.objects.get(family=session.session_id).token_hash != body["refresh"]
    assert AuditLog.objects.filter(action="login.success", user=user).count() == 1


def test_login_failure_does_not_reveal_whether_the_user_exists(user, login, monkeypatch):
    work = []
    monkeypatch.setattr(Argon2PasswordHasher, "encode", _spy(work, "encode", Argon2PasswordHasher.encode))
    monkeypatch.setattr(Argon2PasswordHasher, "verify", _spy(work, "verify", Argon2PasswordHasher.verify))
    wrong = login(user.username, "not-the-password")
    work_wrong, work[:] = list(work), []
    unknown = login("nobody-here", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert _error(wrong) == _error(unknown)
    # Both paths run the argon2 hasher once: the unknown user on a dummy password.
    assert len(work_wrong) == len(work) == 1
    failures = AuditLog.objects.filter(action="login.failure")
    assert sorted(e.details["username"] for e in failures) == sorted([user.username, "nobody-here"])


def _spy(calls, name, original):
    def spy(self, *args, **kwargs):
        calls.append(name)
        return original(self, *args, **kwargs)

    return spy


def test_inactive_user_cannot_log_in(user, login):
    user.is_active = False
    user.save()
    response = login(user.username)
    assert response.status_code == 401
    assert _error(response)["message"] == "Invalid username or password."


OWNER_IP, STRANGER_IP = "10.1.1.1", "10.9.9.9"


@pytest.fixture
def backoff(settings):
    """Backoff after one free failure, 0.2 s doubling to at most 0.8 s; the per-address login rate out of the way."""
    settings.LOGIN_BACKOFF_FREE_FAILURES = 1
    settings.LOGIN_BACKOFF_BASE_S = 0.2
    settings.LOGIN_BACKOFF_MAX_S = 0.8
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": "1000/60"}


def test_a_stranger_cannot_lock_the_owner_out(settings, user, login):
    settings.LOGIN_BACKOFF_FREE_FAILURES = 3
    settings.LOGIN_BACKOFF_BASE_S = 60
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": "1000/60"}
    answers = [login(user.username, "wrong-password", REMOTE_ADDR=STRANGER_IP).status_code for _ in range(20)]
    assert answers[:4] == [401] * 4 and set(answers[4:]) == {429}  # the stranger's address waits...
    locked = login(user.username, REMOTE_ADDR=STRANGER_IP)  # ...even with the right password
    assert locked.status_code == 429 and _error(locked)["code"] == "login_locked"
    assert 1 <= int(locked["Retry-After"]) <= 60
    owner = login(user.username, REMOTE_ADDR=OWNER_IP)  # the owner, from their own address, at once
    assert owner.status_code == 200, owner.content
    assert LoginSession.objects.get(session_id=owner.json()["session_id"]).ip == OWNER_IP


def test_backoff_grows_per_failure_and_is_capped(backoff, user, login):
    import time

    from accounts.throttling import login_backoff_status

    waits = []
    for _ in range(5):
        status = login_backoff_status(username=user.username, ip=STRANGER_IP)
        time.sleep(status["wait_seconds"])  # wait out the current backoff, then fail once more
        assert login(user.username, "wrong-password", REMOTE_ADDR=STRANGER_IP).status_code == 401
        waits.append(login_backoff_status(username=user.username, ip=STRANGER_IP)["wait_seconds"])
    assert waits[0] == 0  # the free failure
    assert 0.1 < waits[1] <= 0.2 < waits[2] <= 0.4 < waits[3] <= 0.8 and 0.4 < waits[4] <= 0.8
    assert login(user.username, REMOTE_ADDR=STRANGER_IP).status_code == 429
    time.sleep(0.85)
    assert login(user.username, REMOTE_ADDR=STRANGER_IP).status_code == 200
    assert login_backoff_status(username=user.username, ip=STRANGER_IP) == {"failures": 0, "wait_seconds": 0.0}


def test_unknown_username_backs_off_the_same_way(backoff, settings, user, login):
    """No enumeration: a name that does not exist answers exactly like one that does."""
    settings.LOGIN_BACKOFF_BASE_S = 30
    answers = {}
    for name in (user.username, "ghost"):
        answers[name] = [login(name, "wrong-password", REMOTE_ADDR=STRANGER_IP) for _ in range(3)]
    assert [r.status_code for r in answers[user.username]] == [r.status_code for r in answers["ghost"]] == [
        401, 401, 429]
    assert _error(answers[user.username][2]) == _error(answers["ghost"][2])


def test_success_resets_the_failure_count(settings, user, login):
    settings.LOGIN_BACKOFF_FREE_FAILURES = 3
    for _ in range(2):
        login(user.username, "wrong-password")
    assert login(user.username).status_code == 200
    for _ in range(3):
        assert login(user.username, "wrong-password").status_code == 401
    assert login(user.username).status_code == 200


def test_login_rate_limit_answers_429_with_retry_after(settings, user, login):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": "2/60"}
    assert login(user.username).status_code == 200
    assert login(user.username).status_code == 200
    response = login(user.username)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert _error(response)["code"] == "rate_limited"


def test_register_rate_limit_answers_429(settings, anon_client):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "register": "1/60"}
    anon_client.post("/api/v1/auth/register", {"username": "u1", "password": "a-Long-enough-pass"}, format="json")
    response = anon_client.post("/api/v1/auth/register", {"username": "u2", "password": "a-Long-enough-pass"},
                                format="json")
    assert response.status_code == 429 and response["Retry-After"]
    assert not User.objects.filter(username="u2").exists()


# --- legacy passwords ------------------------------------------------------------


def test_legacy_hash_upgrades_on_login(login):
    import hashlib

    salt = "s4lt"
    digest = hashlib.sha256((salt + PASSWORD).encode()).hexdigest()
    user = User.objects.create(username="legacy", password_migration_required=True,
                               password=f"legacy_sha256${salt}${digest}")
    assert login("legacy", "wrong-password").status_code == 401
    user.refresh_from_db()
    assert user.password.startswith("legacy_sha256$") and user.password_migration_required
    assert login("legacy").status_code == 200
    user.refresh_from_db()
    assert user.password.startswith("argon2$") and user.check_password(PASSWORD)
    assert user.password_migration_required is False
    assert login("legacy").status_code == 200


# --- tokens ----------------------------------------------------------------------


def _refresh(client, token):
    return client.post("/api/v1/auth/refresh", {"refresh": token}, format="json")


def test_refresh_rotates_and_spends_the_old_token(anon_client, tokens):
    first = _refresh(anon_client, tokens["refresh"])
    assert first.status_code == 200
    new = first.json()
    assert new["refresh"] != tokens["refresh"] and new["session_id"] == tokens["session_id"]
    assert bearer(APIClient(), new["access"]).get(ME).status_code == 200
    assert RefreshToken.objects.filter(family=tokens["session_id"], spent_at__isnull=False).count() == 1


def test_refresh_reuse_revokes_the_whole_family(anon_client, tokens, user):
    rotated = _refresh(anon_client, tokens["refresh"]).json()
    reused = _refresh(anon_client, tokens["refresh"])
    assert reused.status_code == 401 and _error(reused)["code"] == "token_reused"
    # The legitimate holder's newer tokens are dead too.
    assert _refresh(anon_client, rotated["refresh"]).status_code == 401
    assert bearer(APIClient(), rotated["access"]).get(ME).status_code == 401
    assert bearer(APIClient(), tokens["access"]).get(ME).status_code == 401
    assert LoginSession.objects.get(session_id=tokens["session_id"]).revoke_reason == "refresh_reuse"
    assert not RefreshToken.objects.filter(family=tokens["session_id"], revoked_at__isnull=True).exists()
    assert AuditLog.objects.filter(action="token.reuse", user=user).count() == 1


def test_logout_revokes_access_and_refresh_on_the_next_request(anon_client, tokens, user):
    client = bearer(anon_client, tokens["access"])
    assert client.get(ME).status_code == 200
    assert client.post("/api/v1/auth/logout").status_code == 204
    response = client.get(ME)
    assert response.status_code == 401 and _error(response)["code"] == "authentication_failed"
    jti = jwt.decode(tokens["access"], options={"verify_signature": False})["jti"]
    ttl = redis_client("token").ttl(f"token:{jti}")
    assert 0 < ttl <= settings.JWT_ACCESS_TTL.total_seconds()
    assert _refresh(APIClient(), tokens["refresh"]).status_code == 401
    assert AuditLog.objects.filter(action="logout", user=user).count() == 1


def test_logout_of_one_session_leaves_others(anon_client, login, user):
    one = login(user.username).json()
    two = login(user.username).json()
    bearer(anon_client, one["access"]).post("/api/v1/auth/logout")
    assert bearer(APIClient(), two["access"]).get(ME).status_code == 200


def test_revoked_access_token_in_redis_is_rejected(anon_client, tokens):
    jti = jwt.decode(tokens["access"], options={"verify_signature": False})["jti"]
    redis_client("token").set(f"token:{jti}", "revoked", ex=60)
    assert bearer(anon_client, tokens["access"]).get(ME).status_code == 401


def test_expired_access_token_is_401(settings, user, login, anon_client):
    from datetime import timedelta

    settings.JWT_ACCESS_TTL = timedelta(seconds=-5)
    access = login(user.username).json()["access"]
    response = bearer(anon_client, access).get(ME)
    assert response.status_code == 401 and "expired" in _error(response)["message"]


def test_expired_refresh_token_is_401(settings, user, login, anon_client):
    from datetime import timedelta

    settings.JWT_REFRESH_TTL = timedelta(seconds=-5)
    refresh = login(user.username).json()["refresh"]
    assert _refresh(anon_client, refresh).status_code == 401


def test_tampered_token_is_401(anon_client, tokens):
    header, payload, signature = tokens["access"].split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["sub"] = "999999"
    forged = f"{header}.{jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()}.{signature}"
    assert bearer(anon_client, forged).get(ME).status_code == 401
    other_key = jwt.encode(claims, "not-the-signing-key-" * 3, algorithm="HS256")
    assert bearer(APIClient(), other_key).get(ME).status_code == 401
    assert bearer(APIClient(), "garbage").get(ME).status_code == 401
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert bearer(APIClient(), unsigned).get(ME).status_code == 401


def test_wrong_token_type_is_401(anon_client, tokens):
    response = bearer(anon_client, tokens["refresh"]).get(ME)
    assert response.status_code == 401
    assert _refresh(APIClient(), tokens["access"]).status_code == 401


def test_anonymous_is_401_with_challenge(anon_client):
    response = anon_client.get(ME)
    assert response.status_code == 401
    assert _error(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_deactivated_user_token_stops_working(anon_client, tokens, user):
    user.is_active = False
    user.save()
    assert bearer(anon_client, tokens["access"]).get(ME).status_code == 401


# --- me / password -----------------------------------------------------------------


def test_me_patch_updates_profile_but_not_username(anon_client, tokens, user):
    client = bearer(anon_client, tokens["access"])
    response = client.patch(ME, {"email": "new@example.com", "first_name": "Ann", "username": "hijack"},
                            format="json")
    assert response.status_code == 200
    assert response.json()["email"] == "new@example.com" and response.json()["username"] == user.username
    user.refresh_from_db()
    assert (user.email, user.first_name, user.username) != (None, None, "hijack")
    assert user.email == "new@example.com" and user.first_name == "Ann"
    assert client.patch(ME, {"email": "not-an-email"}, format="json").status_code == 400


def test_password_change_revokes_other_sessions(anon_client, login, user):
    current = login(user.username).json()
    other = login(user.username).json()
    client = bearer(anon_client, current["access"])
    response = client.post("/api/v1/auth/password",
                           {"current_password": PASSWORD, "new_password": "another-Long-pass-42"}, format="json")
    assert response.status_code == 204
    assert client.get(ME).status_code == 200
    assert bearer(APIClient(), other["access"]).get(ME).status_code == 401
    assert _refresh(APIClient(), other["refresh"]).status_code == 401
    assert login(user.username).status_code == 401
    assert login(user.username, "another-Long-pass-42").status_code == 200
    assert AuditLog.objects.filter(action="password.change", user=user).count() == 1


def test_password_change_errors_name_the_field(anon_client, tokens):
    client = bearer(anon_client, tokens["access"])
    wrong = client.post("/api/v1/auth/password", {"current_password": "nope-nope", "new_password": "x-Long-pass-42"},
                        format="json")
    assert wrong.status_code == 400 and "current_password" in _error(wrong)["details"]
    weak = client.post("/api/v1/auth/password", {"current_password": PASSWORD, "new_password": "123"}, format="json")
    assert weak.status_code == 400 and "new_password" in _error(weak)["details"]


def test_user_without_usable_password_costs_the_same_hashing(user, login, monkeypatch):
    user.set_unusable_password()
    user.save()
    work = []
    monkeypatch.setattr(Argon2PasswordHasher, "encode", _spy(work, "encode", Argon2PasswordHasher.encode))
    response = login(user.username, "anything-at-all")
    assert response.status_code == 401 and _error(response)["message"] == "Invalid username or password."
    assert work == ["encode"]


def test_redis_down_is_503_not_500_and_fails_closed(anon_client, tokens, user, login, services):
    services["redis"].stop()
    try:
        me = bearer(APIClient(), tokens["access"]).get(ME)
        attempt = login(user.username)
    finally:
        services["redis"].start()
    assert me.status_code == 503 and _error(me)["code"] == "service_unavailable"
    assert attempt.status_code == 503


def test_argon2_cost_comes_from_settings_and_old_costs_are_rehashed_on_login(login, settings):
    from django.contrib.auth.hashers import Argon2PasswordHasher, make_password

    old = Argon2PasswordHasher().encode(PASSWORD, Argon2PasswordHasher().salt())  # Django's own default cost
    assert "m=102400,t=2,p=8" in old
    user = User.objects.create(username="argon-old", password=old)
    assert login("argon-old").status_code == 200
    user.refresh_from_db()
    assert "$argon2id$" in user.password and "m=19456,t=2,p=1" in user.password
    settings.ARGON2_MEMORY_COST_KIB = 12288
    settings.ARGON2_TIME_COST = 3
    assert "m=12288,t=3,p=1" in make_password("another-pass-123")
