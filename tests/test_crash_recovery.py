"""A worker killed mid-file (or mid-run) costs seconds, not a lock's TTL: the redelivered task takes over the
lock (or run) of the dead owner process at once, and the file completes once, with one set of vectors.

The fixture keeps the production lock TTL and workflow staleness; only the broker's redelivery of an unacked
message is shortened (its visibility timeout is an hour in production, see the README's operations notes).
"""

import os
import signal
import time
from pathlib import Path

import pytest

from knowledge import samples
from tests.knowledge_helpers import assert_one_set_of_vectors, uploaded, wait_job
from tests.waiting import eventually

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RECOVERS_WITHIN = 30
PAGES = 16


def _pool_children(pid: int) -> list[int]:
    """The prefork pool's processes of the worker whose main process is `pid`."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _upload_mid_file(api_client, user, worker) -> dict:
    from knowledge.services import knowledge_base_create

    kb = knowledge_base_create(user=user, name="crash")
    texts = [f"Page {i}: recovery notes on killed workers and redelivered tasks, part {i}" for i in range(PAGES)]
    response = api_client.post(f"/api/v1/knowledge-bases/{kb.knowledge_base_id}/files/",
                               {"files": [uploaded("crash.pdf", samples.make_pdf(texts))]}, format="multipart")
    assert response.status_code == 201, response.content
    item = response.json()[0]
    job = wait_job(item["task_id"], worker=worker, timeout=120,
                   states=("rendering", "embedding", "indexing", "completed", "failed"))
    if job.state in ("completed", "failed"):
        pytest.fail(f"the job finished before the crash could be injected ({job.state})")
    return item


def _assert_completed_once(item: dict, worker, since: float) -> None:
    from knowledge.documents import File
    from knowledge.models import IngestionJob

    job = wait_job(item["task_id"], worker=worker, timeout=RECOVERS_WITHIN)
    took = time.monotonic() - since
    assert job.state == "completed", job.error
    assert took < RECOVERS_WITHIN, f"{took:.1f}s"
    assert IngestionJob.objects.filter(file_id=item["file_id"]).count() == 1
    file = File.objects.get(file_id=item["file_id"])
    assert file.status == "completed" and file.page_count == PAGES
    assert_one_set_of_vectors(file)


def test_a_killed_pool_process_mid_file_costs_seconds_not_the_lock_ttl(restartable_worker, api_client, user):
    """The OOM killer's case: the pool process dies, the worker's main process requeues the task at once and a
    new pool process runs it; the lock of the dead one must not hold it back."""
    item = _upload_mid_file(api_client, user, restartable_worker)
    (child,) = _pool_children(restartable_worker.process.pid)
    os.kill(child, signal.SIGKILL)
    killed = time.monotonic()
    _assert_completed_once(item, restartable_worker, since=killed)
    assert "WorkerLostError" in restartable_worker.log() or "exited with" in restartable_worker.log()


def test_a_killed_worker_restarted_finishes_the_file_within_30s_of_the_restart(restartable_worker, api_client,
                                                                                user):
    from knowledge.models import IngestionJob

    item = _upload_mid_file(api_client, user, restartable_worker)
    restartable_worker.kill()
    assert IngestionJob.objects.get(task_id=item["task_id"]).state not in IngestionJob.TERMINAL
    restartable_worker.start()
    _assert_completed_once(item, restartable_worker, since=time.monotonic())


def test_a_killed_worker_restarted_finishes_the_workflow_run_within_30s(restartable_worker, api_client):
    """The run's owner process is gone: the redelivered task claims the run without waiting for its heartbeat
    to go stale (WORKFLOW_STUCK_AFTER_S)."""
    from tests.workflows_helpers import chain, node

    nodes, edges = chain(node("start", "start"),
                         node("slow", "code", code="import time\ntime.sleep(4)\nresult = 1"),
                         node("end", "end", outputs={"b": "slow"}))
    created = api_client.post("/api/v1/workflows/", {"workflow_name": "crash", "nodes": nodes, "edges": edges},
                              format="json")
    assert created.status_code == 201, created.content
    run_id = api_client.post(f"/api/v1/workflows/{created.json()['workflow_id']}/runs", {},
                             format="json").json()["run_id"]
    eventually(lambda: api_client.get(f"/api/v1/runs/{run_id}/").json()["current_node"] == "slow", interval=0.1,
               context=lambda: restartable_worker.log()[-3000:])
    restartable_worker.kill()
    restartable_worker.start()
    restarted = time.monotonic()
    run = eventually(lambda: api_client.get(f"/api/v1/runs/{run_id}/").json(), timeout=RECOVERS_WITHIN,
                     interval=0.3, until=lambda r: r["status"] in ("succeeded", "failed", "cancelled"),
                     context=lambda: restartable_worker.log()[-3000:])
    assert run["status"] == "succeeded", run.get("error")
    assert time.monotonic() - restarted < RECOVERS_WITHIN
    assert run["completed_nodes"] == ["start", "slow", "end"]
