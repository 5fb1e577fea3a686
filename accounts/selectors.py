"""Reads of accounts; every per-user query filters by the owner."""

from django.db.models import QuerySet
from django.utils import timezone

from accounts import tokens
from accounts.models import ApiKey, LoginSession, User
from layra.errors import NotFound


def api_key_list(*, user: User, include_revoked: bool = False) -> QuerySet[ApiKey]:
    keys = ApiKey.objects.filter(user=user)
    return keys if include_revoked else keys.filter(revoked_at__isnull=True)


def api_key_get(*, user: User, key_id: str) -> ApiKey:
    record = ApiKey.objects.filter(user=user, key_id=key_id).first()
    if record is None:
        raise NotFound("API key not found.")
    return record


def api_key_for_key(*, key: str) -> ApiKey | None:
    """The live key record (with its user) for a presented key, or None."""
    record = ApiKey.objects.select_related("user").filter(key_hash=tokens.token_hash(key)).first()
    if record is None or record.revoked_at is not None:
        return None
    if record.expires_at is not None and record.expires_at <= timezone.now():
        return None
    return record


def login_session_for_access(*, session_id: str, user_id: str) -> LoginSession | None:
    """The live login session (with its user) an access token belongs to, or None."""
    session = (LoginSession.objects.select_related("user")
               .filter(session_id=session_id, user_id=user_id, revoked_at__isnull=True).first())
    return session


def login_session_list(*, user: User) -> QuerySet[LoginSession]:
    return LoginSession.objects.filter(user=user, revoked_at__isnull=True)
