"""Page-vector caches for MaxSim re-ranking (fetching vectors from Milvus row by row is the slow part).

Two tiers:
- a process-local LRU of float32 matrices (ready to score) keyed by (collection, generation, image_id).
  The generation of a collection is a Redis counter bumped by every write to it (replace, delete, drop),
  so a page re-embedded in another process is never served stale;
- the Redis cache db, `pagevec:{collection}:{file_id}:{image_id}` → the page's fp16 matrix as bytes (half the size),
  written through when a file is indexed, deleted with the file or the collection, with a TTL.
Misses fall back to one batched Milvus query and fill both tiers. The ANN step only proposes pages that
still exist in Milvus.
"""

import numpy as np
import redis
from django.conf import settings

from layra.lru import SizedLRU
from layra.process_local import ProcessLocal
from layra.redis import redis_client, scan_delete


class PageVectorCache(SizedLRU):
    def __init__(self, *, max_bytes: int):
        super().__init__(max_bytes=max_bytes, size=lambda matrix: matrix.nbytes)


def _new_page_cache() -> PageVectorCache:
    return PageVectorCache(max_bytes=settings.SEARCH_PAGE_CACHE_MB * 1024 * 1024)


page_cache = ProcessLocal(_new_page_cache).get


_binary_redis = None


def binary_redis():
    """A client of the cache db that returns bytes (layra.redis clients decode to str)."""
    global _binary_redis
    if _binary_redis is None:
        _binary_redis = redis.Redis.from_url(
            settings.REDIS_URL, db=settings.REDIS_DBS["cache"], decode_responses=False, socket_timeout=5,
            socket_connect_timeout=2, health_check_interval=30,
        )
    return _binary_redis


def page_key(name: str, file_id: str, image_id: str) -> str:
    return f"pagevec:{name}:{file_id}:{image_id}"


def pages_store(*, name: str, file_id: str, pages: list[tuple[str, np.ndarray]], redis=None) -> None:
    """Write pages' vectors (fp16 bytes) to the Redis tier in one pipeline."""
    redis = redis or binary_redis()
    pipe = redis.pipeline(transaction=False)
    for image_id, matrix in pages:
        pipe.set(page_key(name, file_id, image_id), np.ascontiguousarray(matrix, dtype=np.float16).tobytes(),
                 ex=settings.SEARCH_PAGE_VECTORS_TTL_S)
    pipe.execute()


def pages_load(*, keys: list[str], dim: int, redis=None) -> list[np.ndarray | None]:
    redis = redis or binary_redis()
    values = redis.mget(keys) if keys else []
    return [None if v is None else np.frombuffer(v, dtype=np.float16).reshape(-1, dim) for v in values]


def pages_forget(*, name: str, file_id: str | None = None) -> int:
    """Drop the Redis tier's pages of a file (or of the whole collection)."""
    return scan_delete("cache", f"pagevec:{name}:{file_id}:*" if file_id else f"pagevec:{name}:*")


def generation_key(name: str) -> str:
    return f"vecgen:{name}"


def generations_get(names: list[str]) -> dict[str, str]:
    """Current write generation of each collection (from the cache Redis db; "0" when never bumped)."""
    if not names:
        return {}
    values = redis_client("cache").mget([generation_key(n) for n in names])
    return {n: (v or "0") for n, v in zip(names, values, strict=True)}


def generation_bump(name: str) -> None:
    redis_client("cache").incr(generation_key(name))
