"""Server-sent events: one helper so every stream (progress, answers, runs) is framed alike."""

import json
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse


def sse_event(event: str, data: dict, *, event_id: str | None = None) -> str:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.append(f"data: {json.dumps(data, default=str)}")
    return "\n".join(lines) + "\n\n"


def sse_response(events: Iterable[str]) -> StreamingHttpResponse:
    def _with_heartbeat() -> Iterator[str]:
        yield ": stream open\n\n"
        yield from events

    response = StreamingHttpResponse(_with_heartbeat(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
