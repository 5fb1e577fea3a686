"""Redis in a backup: the dbs whose keys are state, as DUMP payloads with their absolute expiry.

Kept: `token` (revoked token ids until their tokens expire: without them a signed-out or revoked refresh token
would be accepted again after a restore) and `task` (ingestion progress and the event lists of workflow runs,
which clients replay over SSE). Left out, and why: `cache` holds only values derived from the other stores
(restore flushes it), `lock` holds ingestion locks whose owners are gone after a restore (a restored lock would
hold a redelivered file back until its TTL), `ratelimit` holds counters of a minute or two, and the broker's db
holds queued messages that the jobs in MySQL and the stuck-job sweep recreate.

DUMP/RESTORE rather than the RDB file: it needs no access to the Redis host's disk, works on a managed Redis,
and takes only the dbs above. The payload is version-specific: restore into the same or a newer Redis.
"""

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from django.conf import settings

KEPT_PURPOSES = ("token", "task")
SCAN_BATCH = 1000


def _binary_client(purpose: str) -> redis.Redis:
    # layra.redis' clients decode replies to str; DUMP payloads are bytes, so a short-lived binary client is used.
    return redis.Redis.from_url(settings.REDIS_URL, db=settings.REDIS_DBS[purpose], socket_timeout=30)


def _entries(client: redis.Redis) -> Iterator[dict]:
    now_ms = int(time.time() * 1000)
    for key in client.scan_iter(count=SCAN_BATCH):
        payload, ttl_ms = client.dump(key), client.pttl(key)
        if payload is None or ttl_ms == -2:  # expired between SCAN and DUMP
            continue
        yield {"key": base64.b64encode(key).decode(), "dump": base64.b64encode(payload).decode(),
               "expire_at_ms": now_ms + ttl_ms if ttl_ms > 0 else None}


def redis_dump(directory: Path) -> dict[str, int]:
    """Write redis/<purpose>.jsonl for each kept db; returns keys written per purpose."""
    directory.mkdir(parents=True, exist_ok=True)
    counts = {}
    for purpose in KEPT_PURPOSES:
        client = _binary_client(purpose)
        try:
            with (directory / f"{purpose}.jsonl").open("w") as fh:
                counts[purpose] = 0
                for entry in _entries(client):
                    fh.write(json.dumps(entry) + "\n")
                    counts[purpose] += 1
        finally:
            client.close()
    return counts


def redis_restore(directory: Path) -> dict[str, dict[str, int]]:
    """RESTORE every key with its remaining TTL (REPLACE: a rerun overwrites); keys expired since the backup
    are skipped. Returns {"restored": {purpose: n}, "expired": {purpose: n}}."""
    restored: dict[str, int] = {}
    expired: dict[str, int] = {}
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        purpose = path.stem
        client = _binary_client(purpose)
        restored[purpose] = expired[purpose] = 0
        try:
            with path.open() as fh:
                for line in fh:
                    entry = json.loads(line)
                    ttl_ms = 0
                    if entry["expire_at_ms"] is not None:
                        ttl_ms = entry["expire_at_ms"] - int(time.time() * 1000)
                        if ttl_ms <= 0:
                            expired[purpose] += 1
                            continue
                    client.restore(base64.b64decode(entry["key"]), ttl_ms, base64.b64decode(entry["dump"]),
                                   replace=True)
                    restored[purpose] += 1
        finally:
            client.close()
    return {"restored": restored, "expired": expired}
