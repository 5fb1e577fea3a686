"""The client's address, the one place it is read: throttles, login backoff, audit log, sessions.

`NUM_PROXIES` (setting) is how many reverse proxies we own in front of the app. With 0 (the default)
`X-Forwarded-For` is ignored entirely: anyone can send it. With N, each of our proxies appended the address it
saw, so the N-th address from the right is the one our outermost proxy saw; everything to its left was written
by the client and is never trusted. A header shorter than N (a request that bypassed a proxy) falls back to its
leftmost entry, as DRF's throttles do; anything that is not an IP address falls back to REMOTE_ADDR.
"""

import ipaddress

from django.conf import settings


def _valid(value: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The address of the client that sent `request` (a Django or DRF request), or None when unknown."""
    meta = request.META
    remote = _valid(meta.get("REMOTE_ADDR", ""))
    proxies = int(getattr(settings, "NUM_PROXIES", 0) or 0)
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if not forwarded:
        return remote
    return _valid(forwarded[-min(proxies, len(forwarded))]) or remote
