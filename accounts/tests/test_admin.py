import pytest
from rest_framework.test import APIClient

from accounts.models import AuditLog, LoginSession
from accounts.services import audit_log_record
from accounts.tests.conftest import bearer

pytestmark = pytest.mark.django_db


def test_revoke_action_kills_the_sessions_tokens(admin_client, tokens, user):
    session = LoginSession.objects.get(session_id=tokens["session_id"])
    response = admin_client.post("/admin/accounts/loginsession/",
                                 {"action": "revoke_sessions", "_selected_action": [session.pk]}, follow=True)
    assert response.status_code == 200
    session.refresh_from_db()
    assert session.revoked_at is not None and session.revoke_reason == "admin"
    assert bearer(APIClient(), tokens["access"]).get("/api/v1/auth/me").status_code == 401
    assert AuditLog.objects.filter(action="session.revoke", resource_id=session.session_id).exists()


def test_audit_log_admin_is_read_only_and_filterable(admin_client, user):
    audit_log_record(user=user, action="kb.create", resource_type="knowledge_base", resource_id="kb-1")
    audit_log_record(user=user, action="kb.delete", resource_type="knowledge_base", resource_id="kb-2")
    entry = AuditLog.objects.get(action="kb.create")
    listing = admin_client.get("/admin/accounts/auditlog/", {"action": "kb.create"})
    assert listing.status_code == 200
    assert b"kb-1" in listing.content and b"kb-2" not in listing.content
    assert admin_client.get("/admin/accounts/auditlog/add/").status_code == 403
    change = admin_client.post(f"/admin/accounts/auditlog/{entry.pk}/change/", {"action": "tampered"})
    assert change.status_code == 403
    assert admin_client.post(f"/admin/accounts/auditlog/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert entry.action == "kb.create"


@pytest.mark.parametrize("page", ["accounts/user/", "accounts/loginsession/", "accounts/refreshtoken/",
                                  "accounts/apikey/", "accounts/auditlog/"])
def test_admin_pages_render(admin_client, tokens, page):
    assert admin_client.get(f"/admin/{page}").status_code == 200


def test_admin_can_add_a_user(admin_client):
    from accounts.models import User

    page = admin_client.get("/admin/accounts/user/add/")
    assert page.status_code == 200
    response = admin_client.post("/admin/accounts/user/add/", {
        "username": "made-by-admin", "password1": "a-Long-enough-pass", "password2": "a-Long-enough-pass",
        "usable_password": "true",
    })
    assert response.status_code == 302, response.content[:2000]
    assert User.objects.get(username="made-by-admin").check_password("a-Long-enough-pass")


def test_admin_login_form_backs_off_per_username_and_address(settings, client, django_user_model):
    settings.LOGIN_BACKOFF_FREE_FAILURES = 2
    settings.LOGIN_BACKOFF_BASE_S = 60
    django_user_model.objects.create_superuser("boss", "boss@example.com", "a-Long-enough-pass")

    def log_in(password, ip):
        client.logout()
        client.post("/admin/login/", {"username": "boss", "password": password, "next": "/admin/"},
                    REMOTE_ADDR=ip)
        return client.get("/admin/").status_code == 200

    assert [log_in("wrong-password", "10.9.9.9") for _ in range(3)] == [False] * 3
    assert log_in("a-Long-enough-pass", "10.9.9.9") is False  # that address waits, even with the right password
    assert log_in("a-Long-enough-pass", "10.1.1.1") is True  # the owner, elsewhere, is not held back
