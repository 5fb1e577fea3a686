"""Redis clients, one per purpose (token, task, lock, cache, ratelimit), each its own db."""

import redis
from django.conf import settings

_clients: dict[str, redis.Redis] = {}


def redis_client(purpose: str) -> redis.Redis:
    client = _clients.get(purpose)
    if client is None:
        db = settings.REDIS_DBS[purpose]
        client = redis.Redis.from_url(
            settings.REDIS_URL, db=db, decode_responses=True, socket_timeout=5, socket_connect_timeout=2,
            health_check_interval=30,
        )
        _clients[purpose] = client
    return client


def reset() -> None:
    for client in _clients.values():
        client.close()
    _clients.clear()


def scan_delete(purpose: str, pattern: str) -> int:
    """Delete keys by pattern with SCAN (never KEYS)."""
    client = redis_client(purpose)
    deleted = 0
    batch: list[str] = []
    for key in client.scan_iter(match=pattern, count=500):
        batch.append(key)
        if len(batch) >= 500:
            deleted += client.delete(*batch)
            batch.clear()
    if batch:
        deleted += client.delete(*batch)
    return deleted
