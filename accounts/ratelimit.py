"""Fixed-window rate limits in Redis: `ratelimit:{user or ip}:{scope}`, limits in settings.RATE_LIMITS.

Call `rate_limit(request=request, scope="upload")` at the start of a view, or decorate a view method
with `@rate_limited("upload")`. Over the limit raises layra.errors.RateLimited (429 + Retry-After).
"""

import functools

from django.conf import settings

from layra.client_ip import client_ip
from layra.errors import RateLimited
from layra.redis import redis_client

__all__ = ["client_ip", "parse_limit", "rate_limit", "rate_limited"]

# INCR, start the window on the first hit, and answer (count, seconds left) in one round trip.
_HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


def parse_limit(value: str) -> tuple[int, int]:
    """"count/seconds" -> (count, seconds)."""
    count, _, seconds = str(value).partition("/")
    return int(count), int(seconds or 60)


def _limit_for(scope: str) -> tuple[int, int]:
    limits = settings.RATE_LIMITS
    return parse_limit(limits.get(scope) or limits["default"])


def _identity(request) -> str:
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    return f"ip:{client_ip(request) or 'unknown'}"


def rate_limit(*, request, scope: str) -> None:
    """Count one hit for the caller (user, else client IP) in `scope`; raise RateLimited over the limit."""
    if not settings.RATE_LIMIT_ENABLED:
        return
    count_limit, window = _limit_for(scope)
    key = f"ratelimit:{_identity(request)}:{scope}"
    count, ttl = redis_client("ratelimit").eval(_HIT, 1, key, window)
    if int(count) > count_limit:
        raise RateLimited(
            f"Too many requests for '{scope}'; try again in {int(ttl)} s.",
            retry_after=int(ttl),
            details={"scope": scope, "limit": count_limit, "window_seconds": window},
        )


def rate_limited(scope: str):
    """Decorator for a DRF view method: `@rate_limited("search")` before the handler runs."""

    def decorator(method):
        @functools.wraps(method)
        def wrapper(view, request, *args, **kwargs):
            rate_limit(request=request, scope=scope)
            return method(view, request, *args, **kwargs)

        return wrapper

    return decorator
