"""Writes and business rules of accounts: audit log, users, login sessions, tokens, API keys."""

import logging

from django.db import transaction

from accounts.models import AuditLog, User

logger = logging.getLogger(__name__)


def audit_log_record(
    *,
    user: User | None,
    action: str,
    resource_type: str = "",
    resource_id: str = "",
    details: dict | None = None,
    ip: str | None = None,
) -> None:
    """Append one audit entry. Never raises into the caller: a failure is logged and swallowed.

    `user` may be None (or an anonymous user) for actions without an authenticated actor;
    put an attempted username into `details` then.
    """
    try:
        actor = user if user is not None and getattr(user, "is_authenticated", False) and user.pk else None
        username = actor.username if actor else str((details or {}).get("username", ""))[:150]
        # A savepoint: a failed insert must not poison the caller's transaction.
        with transaction.atomic():
            AuditLog.objects.create(
                user=actor,
                username=username,
                action=action[:64],
                resource_type=(resource_type or "")[:64],
                resource_id=str(resource_id or "")[:128],
                details=details or {},
                ip=ip or None,
            )
    except Exception:  # noqa: BLE001 - auditing must never break the audited operation
        logger.exception("audit log write failed", extra={"action": action})
