"""Server-sent events: one framing, one renderer and one polling loop, so every stream (progress, answers, runs)
behaves alike."""

import json
import time
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse
from rest_framework.renderers import BaseRenderer


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


class EventStreamRenderer(BaseRenderer):
    """Lets clients send `Accept: text/event-stream`; a JSON body becomes one event (`error` for a 4xx/5xx).

    The streams themselves are StreamingHttpResponses (sse_response) and never pass through a renderer; this
    renders what a view answers in JSON instead: an error before the stream opens, or a non-streamed answer."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        failed = response is None or response.status_code >= 400
        return sse_event("error" if failed else "message", data or {}).encode()


def polling(*, interval: float, max_seconds: float) -> Iterator[int]:
    """Yield 0, 1, 2, ... once per poll, sleeping `interval` seconds between polls, until `max_seconds` have
    passed. The caller reads its store on each poll and returns when it has seen the end; the loop running out
    means the stream timed out. Callers pass their app's settings (e.g. KNOWLEDGE_SSE_POLL_SECONDS)."""
    deadline = time.monotonic() + max_seconds
    attempt = 0
    while True:
        yield attempt
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)
        attempt += 1
