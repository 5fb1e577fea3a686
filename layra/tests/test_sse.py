"""Every event stream shares layra.sse: one renderer for what a stream view answers in JSON (an error before the
stream opens, a non-streamed answer) and one polling loop whose interval and length come from settings."""

import json
import time

import pytest

from layra.sse import polling
from tests.workflows_helpers import chain, node

pytestmark = pytest.mark.django_db


def _event(response) -> tuple[str, dict]:
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("event: ") and lines[1].startswith("data: "), lines
    return lines[0].split(": ", 1)[1], json.loads(lines[1].split(": ", 1)[1])


@pytest.mark.parametrize("method, path", [
    ("get", "/api/v1/tasks/no-such-task/events"),
    ("get", "/api/v1/runs/no-such-run/events"),
    ("post", "/api/v1/conversations/no-such-conversation/messages"),
])
def test_an_error_before_any_stream_opens_is_one_error_event(api_client, method, path):
    response = getattr(api_client, method)(path, {"question": "Q"} if method == "post" else None, format="json",
                                           HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/event-stream")
    name, data = _event(response)
    assert name == "error" and data["error"]["code"] == "not_found"


def test_polling_sleeps_its_interval_and_stops_after_its_length():
    started = time.monotonic()
    polls = list(polling(interval=0.05, max_seconds=0.3))
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 2
    assert 3 <= len(polls) <= 8 and polls == list(range(len(polls)))


def test_polling_reads_once_even_with_no_time_left():
    assert list(polling(interval=10, max_seconds=0)) == [0]


def test_a_run_stream_ends_after_workflow_sse_max_seconds(api_client, settings):
    settings.WORKFLOW_SSE_POLL_SECONDS, settings.WORKFLOW_SSE_MAX_SECONDS = 0.05, 1
    nodes, edges = chain(node("start", "start"), node("end", "end", outputs={}))
    workflow_id = api_client.post("/api/v1/workflows/", {"workflow_name": "w", "nodes": nodes, "edges": edges},
                                  format="json").json()["workflow_id"]
    # not a transactional test: the run is never handed to a worker and stays queued
    run_id = api_client.post(f"/api/v1/workflows/{workflow_id}/runs", {}, format="json").json()["run_id"]
    started = time.monotonic()
    body = b"".join(api_client.get(f"/api/v1/runs/{run_id}/events").streaming_content).decode()
    assert time.monotonic() - started < 10  # the old loop polled for 600 s
    assert [line for line in body.splitlines() if line.startswith("event: ")] == ["event: run_queued"]
