"""Account deletion, the part accounts owns: check, deactivate at once, record the job, enqueue the cascade.

The user stops being able to do anything the moment this returns: the account is inactive (every
authentication path refuses an inactive user: access tokens, refresh tokens, API keys, the admin's session)
and its login sessions and API keys are revoked. The cascade that removes the user's data from every store
lives in `operations` (a higher layer); it is enqueued by task name so accounts never imports it.
"""

from celery import current_app
from django.db import transaction
from django.utils import timezone

from accounts.models import AccountDeletion, User
from accounts.services import audit_log_record, credentials_revoke
from layra.errors import ValidationError
from layra.ids import new_id

ACCOUNT_DELETE_TASK = "operations.account_delete"


def account_delete_enqueue(deletion: AccountDeletion) -> None:
    """Run (or run again) the cascade of this deletion in the background, once the transaction commits."""
    transaction.on_commit(
        # A signature by name resolves to the registered task, so task_always_eager is honoured (send_task is not).
        lambda: current_app.signature(ACCOUNT_DELETE_TASK, args=(deletion.pk,)).delay())


def account_delete_request(*, user: User, password: str | None = None, requested_by: str = "self",
                           actor: User | None = None, ip: str | None = None) -> AccountDeletion:
    """Delete `user`'s account and everything it owns. The user's own request needs their password (400 when
    missing or wrong); an operator's (`requested_by="admin"`, `actor` the operator) does not.

    Safe to repeat: a deletion already queued or running for the user is returned, not duplicated."""
    if requested_by == "self" and (not password or not user.check_password(password)):
        message = "Password is wrong." if password else "Password is required."
        raise ValidationError(message, details={"password": [message]})
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(is_active=False, updated_at=timezone.now())
        user.is_active = False
        credentials_revoke(user=user, reason="account_delete")
        deletion = AccountDeletion.objects.filter(
            user_ref=user.pk, state__in=[AccountDeletion.State.QUEUED, AccountDeletion.State.RUNNING]).first()
        if deletion is None:
            deletion = AccountDeletion.objects.create(deletion_id=new_id(), user_ref=user.pk,
                                                      username=user.username, requested_by=requested_by)
        # No personal content: the deleted account is named by its row id only; the actor is an operator or none.
        audit_log_record(user=actor if requested_by == "admin" else None, action="account.delete_request",
                         resource_type="user", resource_id=str(user.pk),
                         details={"requested_by": requested_by, "deletion_id": deletion.deletion_id},
                         ip=ip if requested_by == "admin" else None)
        account_delete_enqueue(deletion)
    return deletion
