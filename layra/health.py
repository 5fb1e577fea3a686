"""Readiness checks: each store answers a cheap request, timed."""

import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


# Each check imports its store's client when it runs: a check of a store this deployment does not use (a broker
# when Celery runs eagerly) never loads that client library.
def _check_mongo() -> None:
    from layra.mongo import database

    database().command("ping")


def _check_redis() -> None:
    from layra.redis import redis_client

    redis_client("cache").ping()


def _check_milvus() -> None:
    from layra.milvus import milvus_client

    milvus_client().list_collections()


def _check_storage() -> None:
    from layra.storage import is_s3, s3_client, storage

    if is_s3():
        client = s3_client()
        client.head_bucket(Bucket=settings.AWS_STORAGE_BUCKET_NAME)
    else:
        storage().exists("healthcheck")


def _check_broker() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return  # no broker: tasks run in-process
    from layra.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "mongo": _check_mongo,
    "redis": _check_redis,
    "milvus": _check_milvus,
    "storage": _check_storage,
    "broker": _check_broker,
}


def readiness() -> tuple[bool, dict]:
    results = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
            results[name] = {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
        except Exception as exc:  # noqa: BLE001 - any failure means "down", reported by type only
            results[name] = {
                "status": "down",
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "error": type(exc).__name__,
            }
    return all(r["status"] == "ok" for r in results.values()), results
