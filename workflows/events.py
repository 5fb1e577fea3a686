"""Run events in a Redis list (purpose "task"): appended by the engine, read by the SSE view."""

import json

from layra.redis import redis_client

EVENTS_TTL = 24 * 3600
FINAL_EVENTS = {"run_finished", "run_paused", "run_waiting_input"}


def events_key(run_id: str) -> str:
    return f"workflow:run:{run_id}:events"


def event_emit(*, run_id: str, event: str, data: dict) -> None:
    client = redis_client("task")
    pipe = client.pipeline()
    pipe.rpush(events_key(run_id), json.dumps({"event": event, "data": data}, default=str))
    pipe.expire(events_key(run_id), EVENTS_TTL)
    pipe.execute()


def events_read(*, run_id: str, start: int = 0) -> list[tuple[int, str, dict]]:
    raw = redis_client("task").lrange(events_key(run_id), start, -1)
    out = []
    for offset, item in enumerate(raw):
        parsed = json.loads(item)
        out.append((start + offset, parsed["event"], parsed["data"]))
    return out
