"""Read-through caches in Redis (the `cache` db), safe against the read/invalidate race.

A reader that misses reads its store, then fills the entry; a writer changes the store, then drops the entry.
Were the drop a DELETE, a reader that read the store just before a write and filled just after its drop would
put the old value back for a whole TTL: a new KB missing from the list, a renamed one under its old name, a
model config with its old URL or key. So a drop leaves a short-lived tombstone and a fill writes only where
nothing is (SET NX): that late fill finds the tombstone and writes nothing, and readers go to the store until
the tombstone expires.
A cache outage is a miss; it never fails a read or a write.
"""

import logging
from collections.abc import Callable

from layra.redis import redis_client

logger = logging.getLogger(__name__)

TOMBSTONE = "~"
TOMBSTONE_SECONDS = 10  # far longer than a request takes from its store read to its fill


def cached(key_of: Callable[[str], str], ids: list[str]) -> dict[str, str]:
    """{id: value} of the ids cached under `key_of(id)` (a tombstone or an outage reads as a miss)."""
    if not ids:
        return {}
    try:
        values = redis_client("cache").mget([key_of(i) for i in ids])
    except Exception:  # noqa: BLE001 - a cache outage falls back to the store
        return {}
    return {i: value for i, value in zip(ids, values, strict=True) if value and value != TOMBSTONE}


def fill(key_of: Callable[[str], str], values: dict[str, str], *, ttl: int) -> None:
    """Cache each value under `key_of(id)` for `ttl` seconds, unless an entry (or tombstone) is there."""
    if not values:
        return
    try:
        pipe = redis_client("cache").pipeline(transaction=False)
        for i, value in values.items():
            pipe.set(key_of(i), value, ex=ttl, nx=True)
        pipe.execute()
    except Exception:  # noqa: BLE001 - a cache outage must not fail a read
        pass


def drop(*keys: str) -> None:
    """Invalidate entries after a write: a tombstone that stops a fill racing with the write."""
    try:
        pipe = redis_client("cache").pipeline(transaction=False)
        for key in keys:
            pipe.set(key, TOMBSTONE, ex=TOMBSTONE_SECONDS)
        pipe.execute()
    except Exception:  # noqa: BLE001 - a cache outage must not fail a write; the entries expire anyway
        logger.warning("cache invalidation failed for %s", ", ".join(keys))
