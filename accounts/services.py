"""Writes and business rules of accounts: audit log, users, login sessions, tokens, API keys."""

import logging
import secrets
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import tokens
from accounts.models import ApiKey, AuditLog, LoginSession, RefreshToken, User, email_normalize
from accounts.selectors import api_key_get
from accounts.throttling import login_backoff_check, login_backoff_clear, login_backoff_failure
from accounts.validators import username_problems
from layra.errors import AuthenticationFailed, Conflict, RateLimited, ValidationError
from layra.ids import new_id

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


# --- users ----------------------------------------------------------------------


def user_register(*, username: str, password: str, email: str = "", ip: str | None = None) -> User:
    username = username.strip()
    _validate_username(username)
    if email:
        _validate_email(email)
    candidate = User(username=username, email=email)
    _validate_password(password, user=candidate, field="password")
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict("That username is taken.", details={"field": "username"})
    _email_check_free(email)
    candidate.set_password(password)
    try:
        with transaction.atomic():
            candidate.save()
    except IntegrityError as exc:  # a concurrent registration won the race
        _email_check_free(email)
        raise Conflict("That username is taken.", details={"field": "username"}) from exc
    audit_log_record(user=candidate, action="user.register", resource_type="user", resource_id=username, ip=ip)
    return candidate


def user_update(*, user: User, email: str | None = None, first_name: str | None = None,
                last_name: str | None = None) -> User:
    """Profile fields only; the username is the owner key of every document and never changes here."""
    if email:
        _validate_email(email)
        _email_check_free(email, user=user)
    changes = {"email": email, "first_name": first_name, "last_name": last_name}
    fields = [name for name, value in changes.items() if value is not None]
    for name in fields:
        setattr(user, name, changes[name])
    if fields:
        try:
            with transaction.atomic():
                user.save(update_fields=[*fields, "updated_at"])
        except IntegrityError as exc:  # another account took the address meanwhile
            raise _email_taken() from exc
    return user


def _email_taken() -> Conflict:
    return Conflict("That email address is already used by another account.", code="email_taken",
                    details={"field": "email"})


def _email_check_free(email: str | None, *, user: User | None = None) -> None:
    """Conflict when another account holds this address (any case)."""
    stored = email_normalize(email)
    if stored is None:
        return
    others = User.objects.filter(email=stored)
    if user is not None:
        others = others.exclude(pk=user.pk)
    if others.exists():
        raise _email_taken()


def user_for_login(identifier: str) -> User | None:
    """The account a login names: by username, else (an address) by its email, case-insensitively."""
    if not identifier:
        return None
    user = User.objects.filter(username=identifier).first()
    if user is None and "@" in identifier:
        user = User.objects.filter(email=email_normalize(identifier)).first()
    return user


def password_change(*, user: User, current_password: str, new_password: str, session_id: str | None = None,
                    ip: str | None = None) -> None:
    """Change the password, revoke every API key and every other login session (the current one, if any, stays).

    A leaked key or a stolen session is what a password change is usually for: none of them survives it."""
    if not user.check_password(current_password):
        raise ValidationError("Current password is wrong.",
                              details={"current_password": ["Current password is wrong."]})
    _validate_password(new_password, user=user, field="new_password")
    user.set_password(new_password)
    user.password_migration_required = False
    user.save(update_fields=["password", "password_migration_required", "updated_at"])
    revoked = credentials_revoke(user=user, keep_session_id=session_id, reason="password_change")
    audit_log_record(user=user, action="password.change", resource_type="user", resource_id=user.username,
                     details=revoked, ip=ip)


def credentials_revoke(*, user: User, reason: str, keep_session_id: str | None = None) -> dict:
    """Revoke every API key and login session of `user` but `keep_session_id`; returns the counts."""
    others = LoginSession.objects.filter(user=user, revoked_at__isnull=True)
    if keep_session_id:
        others = others.exclude(session_id=keep_session_id)
    sessions = [s.session_id for s in others.only("session_id")]
    for sid in sessions:
        session_revoke(session_id=sid, reason=reason)
    keys = ApiKey.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    return {"sessions_revoked": len(sessions), "api_keys_revoked": keys}


def _validate_username(username: str) -> None:
    problems = username_problems(username)
    if problems:
        raise ValidationError("Invalid username.", details={"username": problems})


def _validate_email(email: str) -> None:
    try:
        validate_email(email)
    except DjangoValidationError as exc:
        raise ValidationError("Invalid email.", details={"email": list(exc.messages)}) from exc


def _validate_password(password: str, *, user: User, field: str) -> None:
    if not password:
        raise ValidationError("Password is required.", details={field: ["This field is required."]})
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ValidationError("Password is too weak.", details={field: list(exc.messages)}) from exc


# --- login, tokens, sessions ------------------------------------------------------

_LOGIN_FAILED = "Invalid username or password."


def _login_failed(*, username: str, reason: str, ip: str | None, user: User | None = None) -> AuthenticationFailed:
    """Count the failure against this username + address (existing name or not); past the free failures that
    pair waits, longer after each further failure (accounts.throttling)."""
    wait = login_backoff_failure(username=username, ip=ip)
    if wait:
        reason = f"{reason}+backoff"
    audit_log_record(user=user, action="login.failure", resource_type="user", resource_id=username[:128],
                     details={"username": username, "reason": reason, "wait_seconds": wait}, ip=ip)
    return AuthenticationFailed(_LOGIN_FAILED, code="invalid_credentials")


def login(*, username: str, password: str, ip: str | None = None, user_agent: str = "") -> dict:
    """Check the credentials and open a login session. Returns the token pair.

    The answer and the work done are the same whether or not the username exists (the hasher runs on a
    dummy), so neither message nor timing tells them apart. A username + address still waiting after failed
    logins answers 429 without the password being checked; the same username from another address does not wait.
    """
    username = (username or "").strip()
    try:
        login_backoff_check(username=username, ip=ip)
    except RateLimited:
        audit_log_record(user=None, action="login.failure", resource_type="user", resource_id=username[:128],
                         details={"username": username, "reason": "backoff"}, ip=ip)
        raise

    user = user_for_login(username)
    if user is None:
        make_password(password)  # same cost as a real check
        raise _login_failed(username=username, reason="unknown_user", ip=ip)

    def upgrade(raw: str) -> None:  # runs when the stored hash is legacy or outdated
        user.set_password(raw)
        user.password_migration_required = False
        user.save(update_fields=["password", "password_migration_required", "updated_at"])

    if not check_password(password, user.password, upgrade):
        raise _login_failed(username=username, reason="bad_password", ip=ip, user=user)
    if not user.is_active:
        raise _login_failed(username=username, reason="inactive", ip=ip, user=user)
    if user.password_migration_required:
        user.password_migration_required = False
        user.save(update_fields=["password_migration_required", "updated_at"])

    login_backoff_clear(username=username, ip=ip)
    now = timezone.now()
    with transaction.atomic():
        # Update the user row first: its exclusive lock serialises concurrent logins of one user. Inserting the
        # session first takes a shared lock on that row (foreign key) and two logins then deadlock.
        User.objects.filter(pk=user.pk).update(last_login=now)
        session = LoginSession.objects.create(session_id=new_id(), user=user, last_activity=now, ip=ip,
                                              user_agent=(user_agent or "")[:512])
        tokens = _token_pair(user=user, session=session)
    audit_log_record(user=user, action="login.success", resource_type="session", resource_id=session.session_id,
                     ip=ip)
    return tokens


def _token_pair(*, user: User, session: LoginSession) -> dict:
    access, access_payload = tokens.token_encode(user_id=user.pk, username=user.username,
                                                 session_id=session.session_id, token_type=tokens.ACCESS)
    refresh, refresh_payload = tokens.token_encode(user_id=user.pk, username=user.username,
                                                   session_id=session.session_id, token_type=tokens.REFRESH)
    RefreshToken.objects.create(
        jti=refresh_payload["jti"], token_hash=tokens.token_hash(refresh), user=user, session=session,
        family=session.session_id, expires_at=datetime.fromtimestamp(refresh_payload["exp"], tz=UTC),
    )
    return {
        "access": access,
        "refresh": refresh,
        "token_type": "Bearer",
        "expires_in": access_payload["exp"] - access_payload["iat"],
        "session_id": session.session_id,
    }


def token_refresh(*, refresh: str, ip: str | None = None) -> dict:
    """Spend a refresh token for a new pair in the same family. Re-use of a spent one revokes the family."""
    try:
        tokens.token_decode(refresh, expected_type=tokens.REFRESH)
    except tokens.TokenError as exc:
        raise AuthenticationFailed(str(exc), code="token_invalid") from exc
    outcome, pair, row = "invalid", None, None
    with transaction.atomic():
        row = (RefreshToken.objects.select_for_update().select_related("session", "user")
               .filter(token_hash=tokens.token_hash(refresh)).first())
        if row is None:
            outcome = "invalid"
        elif row.spent_at is not None:
            outcome = "reuse"
        elif row.revoked_at is not None or row.session.revoked_at is not None or not row.user.is_active:
            outcome = "revoked"
        else:
            now = timezone.now()
            row.spent_at = now
            row.save(update_fields=["spent_at"])
            LoginSession.objects.filter(pk=row.session_id).update(last_activity=now)
            pair = _token_pair(user=row.user, session=row.session)
            outcome = "ok"
    if outcome == "ok":
        return pair
    if outcome == "reuse":
        # Someone holds a copy of a spent token: end the whole login (both holders must log in again).
        session_revoke(session_id=row.family, reason="refresh_reuse")
        audit_log_record(user=row.user, action="token.reuse", resource_type="session", resource_id=row.family,
                         details={"jti": row.jti}, ip=ip)
        raise AuthenticationFailed("Refresh token was already used; the session has been revoked.",
                                   code="token_reused")
    raise AuthenticationFailed("Refresh token is revoked or unknown.", code="token_revoked")


def logout(*, user: User, access_payload: dict, ip: str | None = None) -> None:
    """Revoke this access token (Redis, for its remaining life) and its login session with the refresh family."""
    tokens.access_revoke(payload=access_payload)
    session_revoke(session_id=access_payload["sid"], reason="logout")
    audit_log_record(user=user, action="logout", resource_type="session", resource_id=access_payload["sid"], ip=ip)


def session_revoke(*, session_id: str, reason: str = "revoked") -> bool:
    """End a login session: its access tokens stop working and its refresh tokens are revoked."""
    now = timezone.now()
    with transaction.atomic():
        changed = LoginSession.objects.filter(session_id=session_id, revoked_at__isnull=True).update(
            revoked_at=now, revoke_reason=reason[:64])
        RefreshToken.objects.filter(family=session_id, revoked_at__isnull=True).update(revoked_at=now)
    return bool(changed)


def session_touch(*, session: LoginSession) -> None:
    """Record activity, at most once per ACCOUNTS_ACTIVITY_RESOLUTION seconds."""
    now = timezone.now()
    if (now - session.last_activity).total_seconds() >= settings.ACCOUNTS_ACTIVITY_RESOLUTION:
        LoginSession.objects.filter(pk=session.pk).update(last_activity=now)
        session.last_activity = now


# --- API keys ---------------------------------------------------------------------

API_KEY_PREFIX = "lyr_"


def api_key_create(*, user: User, name: str, expires_in_days: int | None = None,
                   ip: str | None = None) -> tuple[ApiKey, str]:
    """A new key for `user`. Returns (record, key); the key itself is never stored nor shown again."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("Name is required.", details={"name": ["This field is required."]})
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    record = ApiKey.objects.create(key_id=new_id(), user=user, name=name[:100], prefix=key[:12],
                                   key_hash=tokens.token_hash(key), expires_at=expires_at)
    audit_log_record(user=user, action="api_key.create", resource_type="api_key", resource_id=record.key_id,
                     details={"name": record.name}, ip=ip)
    return record, key


def api_key_revoke(*, user: User, key_id: str, ip: str | None = None) -> None:
    record = api_key_get(user=user, key_id=key_id)
    if record.revoked_at is None:
        record.revoked_at = timezone.now()
        record.save(update_fields=["revoked_at"])
    audit_log_record(user=user, action="api_key.revoke", resource_type="api_key", resource_id=record.key_id,
                     ip=ip)


def api_key_touch(*, api_key: ApiKey) -> None:
    now = timezone.now()
    last = api_key.last_used_at
    if last is None or (now - last).total_seconds() >= settings.ACCOUNTS_ACTIVITY_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now


def tokens_purge(*, older_than_days: int = 30) -> dict:
    """Delete refresh tokens expired, and login sessions ended or idle past the refresh lifetime, for longer
    than `older_than_days`. Revoked access tokens expire from Redis by themselves."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    tokens_deleted, _ = RefreshToken.objects.filter(expires_at__lt=cutoff).delete()
    stale = LoginSession.objects.filter(revoked_at__lt=cutoff) | LoginSession.objects.filter(
        last_activity__lt=cutoff - settings.JWT_REFRESH_TTL)
    sessions_deleted = stale.count()
    stale.delete()
    return {"refresh_tokens_deleted": tokens_deleted, "sessions_deleted": sessions_deleted}
