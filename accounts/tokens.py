"""JWT access/refresh tokens (PyJWT, HS256) and the access-token revocation list in Redis db0 `token:{jti}`."""

import hashlib
from datetime import UTC, datetime

import jwt
from django.conf import settings

from layra.ids import new_id
from layra.redis import redis_client

ACCESS = "access"
REFRESH = "refresh"


class TokenError(Exception):
    """The token is malformed, tampered with, expired or of the wrong type."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_encode(*, user_id: int, username: str, session_id: str, token_type: str) -> tuple[str, dict]:
    """A signed token and its payload. `sid` ties it to the login session (the refresh family)."""
    ttl = settings.JWT_ACCESS_TTL if token_type == ACCESS else settings.JWT_REFRESH_TTL
    now = datetime.now(UTC)
    payload = {
        "token_type": token_type,
        "sub": str(user_id),
        "username": username,
        "sid": session_id,
        "jti": new_id(),
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(payload, settings.JWT_SIGNING_KEY, algorithm=settings.JWT_ALGORITHM), payload


def token_decode(token: str, *, expected_type: str) -> dict:
    try:
        payload = jwt.decode(
            token,
            settings.JWT_SIGNING_KEY,
            algorithms=[settings.JWT_ALGORITHM],
            options={"require": ["exp", "iat", "jti", "sub", "sid", "token_type"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("Token has expired.") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError("Token is invalid.") from exc
    if payload.get("token_type") != expected_type:
        raise TokenError(f"An {expected_type} token is required." if expected_type == ACCESS
                         else f"A {expected_type} token is required.")
    return payload


def access_revoke(*, payload: dict) -> None:
    """Deny this access token until it would have expired anyway."""
    remaining = int(payload["exp"] - datetime.now(UTC).timestamp())
    if remaining > 0:
        redis_client("token").set(f"token:{payload['jti']}", "revoked", ex=remaining)


def access_is_revoked(*, jti: str) -> bool:
    return bool(redis_client("token").exists(f"token:{jti}"))
