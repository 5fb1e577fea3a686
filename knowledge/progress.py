"""Ingestion progress in Redis (purpose "task"): hash `task:{task_id}` with status, processed, total, message."""

import time

from django.conf import settings

from layra.redis import redis_client


def _key(task_id: str) -> str:
    return f"task:{task_id}"


def progress_set(*, task_id: str, status: str, processed: int | None = None, total: int | None = None,
                 message: str = "") -> None:
    fields = {"status": status, "message": message, "updated_at": f"{time.time():.3f}"}
    if processed is not None:
        fields["processed"] = processed
    if total is not None:
        fields["total"] = total
    client = redis_client("task")
    pipe = client.pipeline()
    pipe.hsetnx(_key(task_id), "started_at", f"{time.time():.3f}")
    pipe.hset(_key(task_id), mapping=fields)
    pipe.expire(_key(task_id), settings.KNOWLEDGE_TASK_PROGRESS_TTL)
    pipe.execute()


def progress_get(*, task_id: str) -> dict:
    raw = redis_client("task").hgetall(_key(task_id))
    if not raw:
        return {}
    out: dict = {"status": raw.get("status", ""), "message": raw.get("message", ""),
                 "processed": int(raw.get("processed") or 0), "total": int(raw.get("total") or 0)}
    started, updated = float(raw.get("started_at") or 0), float(raw.get("updated_at") or 0)
    out["eta_seconds"] = None
    if out["total"] and 0 < out["processed"] < out["total"] and updated > started:
        rate = out["processed"] / (updated - started)
        out["eta_seconds"] = round((out["total"] - out["processed"]) / rate, 1)
    elif out["total"] and out["processed"] >= out["total"]:
        out["eta_seconds"] = 0.0
    return out


def progress_delete(*, task_id: str) -> None:
    redis_client("task").delete(_key(task_id))
