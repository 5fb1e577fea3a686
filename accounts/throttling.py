"""Abuse limits: the per-user API throttle every authenticated request passes, and the login backoff.

The API throttle counts each authenticated request against its user's "read" (safe methods) or "write" budget
(settings.RATE_LIMITS, fixed windows in Redis, accounts.ratelimit). Views whose calls are expensive (a chat turn,
a workflow run, a chatflow message) add their own scope with `rate_limit(request=..., scope=...)` as well.
Anonymous requests are not counted here: the views open to them (login, register, refresh) limit per address.
A view may opt out with `throttle_exempt = True` (signed, expiring image URLs, which carry no user token).

Login failures are counted per username + client address, never per username alone: a stranger guessing from
one address makes that address wait (growing, capped), while the owner logging in from their own address is
never held back by it.
"""

import hashlib
import math

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from accounts.ratelimit import rate_limit
from layra.errors import RateLimited
from layra.redis import redis_client

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class UserRateThrottle(BaseThrottle):
    """DRF throttle: one hit per authenticated request in the user's "read" or "write" scope."""

    def allow_request(self, request, view) -> bool:
        user = getattr(request, "user", None)
        if user is None or not getattr(user, "is_authenticated", False) or getattr(view, "throttle_exempt", False):
            return True
        rate_limit(request=request, scope="read" if request.method in SAFE_METHODS else "write")
        return True


# --- login backoff ---------------------------------------------------------------------------------------

# Count one failure and, past the free ones, close the pair for base * 2^(n - free - 1) ms, capped; one trip.
_FAIL = """
local failures = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local free = tonumber(ARGV[2])
if failures <= free then
  return {failures, 0}
end
local wait = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ (failures - free - 1))
wait = math.max(1, math.floor(wait))
redis.call('SET', KEYS[2], '1', 'PX', wait)
return {failures, wait}
"""


def _keys(*, username: str, ip: str | None) -> tuple[str, str]:
    name = hashlib.sha256((username or "").strip().lower().encode()).hexdigest()[:32]
    pair = f"{name}:{ip or 'unknown'}"
    return f"loginfail:{pair}", f"loginwait:{pair}"


def login_backoff_check(*, username: str, ip: str | None) -> None:
    """Raise RateLimited (429, code login_locked) while this username + address must wait."""
    _fail_key, wait_key = _keys(username=username, ip=ip)
    left_ms = redis_client("ratelimit").pttl(wait_key)
    if left_ms and left_ms > 0:
        seconds = math.ceil(left_ms / 1000)
        raise RateLimited(f"Too many failed logins from this address; try again in {seconds} s.",
                          retry_after=seconds, code="login_locked")


def login_backoff_failure(*, username: str, ip: str | None) -> float:
    """Count a failed login of this username from this address; return the seconds it must now wait (0: none)."""
    fail_key, wait_key = _keys(username=username, ip=ip)
    _failures, wait_ms = redis_client("ratelimit").eval(
        _FAIL, 2, fail_key, wait_key, settings.LOGIN_BACKOFF_RESET_S, settings.LOGIN_BACKOFF_FREE_FAILURES,
        int(settings.LOGIN_BACKOFF_BASE_S * 1000), int(settings.LOGIN_BACKOFF_MAX_S * 1000))
    return int(wait_ms) / 1000


def login_backoff_clear(*, username: str, ip: str | None) -> None:
    """A successful login from this address forgets its failures."""
    redis_client("ratelimit").delete(*_keys(username=username, ip=ip))


def login_backoff_status(*, username: str, ip: str | None) -> dict:
    """{"failures": n, "wait_seconds": s} for this username + address (operators, tests)."""
    fail_key, wait_key = _keys(username=username, ip=ip)
    client = redis_client("ratelimit")
    failures = int(client.get(fail_key) or 0)
    left_ms = client.pttl(wait_key)
    return {"failures": failures, "wait_seconds": max(0, left_ms) / 1000 if left_ms and left_ms > 0 else 0.0}
