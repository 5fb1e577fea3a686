"""Observability under the real servers: one /metrics scrape sums every gunicorn worker, access logs are JSON
lines with the request id, and Celery task outcomes and durations reach /metrics from a real worker."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.plugin import ROOT
from tests.waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, request_id: str = "") -> tuple[int, dict, str]:
    request = urllib.request.Request(url, headers={"Connection": "close", **({"X-Request-ID": request_id}
                                                                            if request_id else {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


@pytest.fixture
def gunicorn(settings, tmp_path):
    """A real gunicorn (gunicorn.conf.py) with two workers on a free port, against the test database."""
    db_name = settings.DATABASES["default"]["NAME"]
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"{base}/{db_name}", "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "2",
           "GUNICORN_PRELOAD_EMBEDDER": "false", "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # gunicorn.conf.py makes one for this master
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "layra.wsgi:application", "-b",
                                    f"127.0.0.1:{port}"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return _get(f"{url}/api/v1/health/live")[0] == 200
        except OSError:
            return process.poll() is not None  # exited: stop waiting, the assert below says why

    eventually(up, timeout=120, interval=0.5, context=lambda: log_path.read_text()[-3000:])
    assert process.poll() is None, log_path.read_text()[-3000:]
    yield url, log_path
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _access_entries(log_path: Path) -> list[dict]:
    entries = []
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("logger") == "gunicorn.access":
                entries.append(entry)
    return entries


def _sample(body: str, name: str) -> float:
    """The value of an unlabelled series in a scrape (the sum over workers in multiprocess mode)."""
    values = [float(line.split()[-1]) for line in body.splitlines() if line.startswith(f"{name} ")]
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def test_one_scrape_sums_the_requests_of_both_gunicorn_workers(gunicorn):
    url, log_path = gunicorn
    sent = 1  # the readiness probe of the fixture
    pids: set[int] = set()
    deadline = time.monotonic() + 60
    while (len(pids) < 2 or sent < 20) and time.monotonic() < deadline:
        assert _get(f"{url}/api/v1/health/live")[0] == 200
        sent += 1
        pids = {e["worker_pid"] for e in _access_entries(log_path)}
    assert len(pids) == 2, f"both workers served requests: {pids}"
    served = {pid: sum(e["worker_pid"] == pid for e in _access_entries(log_path)) for pid in pids}

    status, _headers, body = _get(f"{url}/metrics")
    assert status == 200
    # Every request so far and the scrape itself, whichever worker served it: a single worker's registry would
    # show only its own share (one of `served`).
    assert _sample(body, "django_http_requests_before_middlewares_total") == sent + 1, served
    assert max(served.values()) < sent
    assert "layra_ingestion_jobs{" in body, "the scrape-time store gauges are still served"


def test_access_log_lines_are_json_with_the_request_id(gunicorn):
    url, log_path = gunicorn
    status, headers, _body = _get(f"{url}/api/v1/health/live", request_id="trace-me-42")
    assert status == 200 and headers["X-Request-ID"] == "trace-me-42"
    status, headers, _body = _get(f"{url}/api/v1/no-such-route/")
    generated = headers["X-Request-ID"]
    entries = eventually(lambda: _access_entries(log_path),
                         until=lambda es: {"trace-me-42", generated} <= {e["request_id"] for e in es})
    traced = next(e for e in entries if e["request_id"] == "trace-me-42")
    assert (traced["method"], traced["path"], traced["status"]) == ("GET", "/api/v1/health/live", 200)
    assert traced["duration_ms"] >= 0 and traced["level"] == "INFO" and traced["ts"]
    assert next(e for e in entries if e["request_id"] == generated)["status"] == 404


@pytest.fixture
def quick_retry_worker(monkeypatch, request):
    """A real worker whose ingestion steps give up waiting for a held file lock after 1 s (a retry follows)."""
    monkeypatch.setenv("KNOWLEDGE_STEP_LOCK_WAIT", "1")
    return request.getfixturevalue("celery_worker")


def _series(body: str, name: str, **labels) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    prefix = f"{name}{{{wanted}}} "
    return next((float(line.split()[-1]) for line in body.splitlines() if line.startswith(prefix)), None)


def test_celery_task_outcomes_and_durations_reach_metrics_from_a_real_worker(quick_retry_worker, api_client, user,
                                                                             anon_client):
    from knowledge.models import IngestionJob
    from knowledge.services import knowledge_base_create
    from layra.celery import app
    from layra.locks import held
    from layra.redis import redis_client
    from tests.knowledge_helpers import uploaded, wait_job

    kb = knowledge_base_create(user=user, name="metrics")
    item = api_client.post(f"/api/v1/knowledge-bases/{kb.knowledge_base_id}/files/",
                           {"files": [uploaded("a.txt", b"counted by the worker")]}, format="multipart").json()[0]
    job = wait_job(item["task_id"], worker=quick_retry_worker, timeout=120)
    assert job.state == "completed", job.error
    app.send_task("knowledge.ingest_file", args=[IngestionJob.objects.order_by("-pk").first().pk + 1000])
    with held(redis_client("lock"), f"lock:ingest:{item['file_id']}", ttl=30, wait=1):  # a live owner: Busy
        app.send_task("knowledge.embed_file", args=[job.pk])
        body = eventually(lambda: anon_client.get("/metrics").content.decode(), timeout=60,
                          until=lambda b: _series(b, "layra_celery_tasks_total", outcome="retried", queue="gpu",
                                                  task="knowledge.embed_file"),
                          context=lambda: quick_retry_worker.log()[-3000:])
    body = eventually(lambda: anon_client.get("/metrics").content.decode(), timeout=60,
                      until=lambda b: _series(b, "layra_celery_tasks_total", outcome="succeeded", queue="gpu",
                                              task="knowledge.embed_file") == 2,  # the upload's, then the retry
                      context=lambda: quick_retry_worker.log()[-3000:])

    def series(name, **labels):
        return _series(body, name, **labels)

    assert series("layra_celery_tasks_total", outcome="succeeded", queue="ingest", task="knowledge.ingest_file") == 1
    assert series("layra_celery_tasks_total", outcome="failed", queue="ingest", task="knowledge.ingest_file") == 1
    assert series("layra_celery_tasks_total", outcome="retried", queue="gpu", task="knowledge.embed_file") == 1
    runs = series("layra_celery_task_duration_seconds_count", queue="gpu", task="knowledge.embed_file")
    assert runs == 3, "every run is timed: success, retry and success"
    assert series("layra_celery_task_duration_seconds_bucket", le="+Inf", queue="gpu",
                  task="knowledge.embed_file") == 3
    assert series("layra_celery_task_duration_seconds_sum", queue="gpu", task="knowledge.embed_file") >= 1.0, \
        "the retried run waited a second for the lock"
