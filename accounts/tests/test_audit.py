import pytest
from django.db import transaction

from accounts.models import AuditLog
from accounts.services import audit_log_record


@pytest.mark.django_db
def test_audit_entry_is_recorded_with_all_fields(user):
    audit_log_record(user=user, action="kb.create", resource_type="knowledge_base", resource_id="kb-1",
                     details={"name": "x"}, ip="10.1.2.3")
    entry = AuditLog.objects.get()
    assert (entry.user, entry.username, entry.action) == (user, user.username, "kb.create")
    assert (entry.resource_type, entry.resource_id, entry.details, entry.ip) == (
        "knowledge_base", "kb-1", {"name": "x"}, "10.1.2.3")


@pytest.mark.django_db
def test_anonymous_entry_keeps_attempted_username():
    audit_log_record(user=None, action="login.failure", details={"username": "ghost"})
    entry = AuditLog.objects.get()
    assert entry.user is None and entry.username == "ghost"


@pytest.mark.django_db(transaction=True)
def test_audit_failure_never_raises_nor_breaks_callers_transaction(user):
    with transaction.atomic():
        audit_log_record(user=user, action="x", ip="not-an-ip" * 50, details={"bad": object()})
        user.first_name = "still-works"
        user.save()
    user.refresh_from_db()
    assert user.first_name == "still-works"
    assert AuditLog.objects.count() == 0
