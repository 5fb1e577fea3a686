"""Upload batches (`uploads/{batch_id}/`), the job list (`tasks/`) and a user's retry (`tasks/{id}/retry/`)."""

import pytest

from knowledge import pipeline, samples
from knowledge.models import IngestionJob
from knowledge.services import knowledge_base_create
from layra.storage import objects_delete
from tests.knowledge_helpers import upload_url, uploaded

pytestmark = pytest.mark.django_db


def _job(file: dict) -> IngestionJob:
    return IngestionJob.objects.get(task_id=file["task_id"])


@pytest.fixture
def batch(api_client, user, django_capture_on_commit_callbacks):
    """Four files uploaded at once; nothing has run yet (the ingestion tasks are held back)."""
    kb = knowledge_base_create(user=user, name="Batch")
    files = [uploaded(f"{name}.pdf", samples.make_pdf([f"{name} page one", f"{name} page two"]))
             for name in ("done", "running", "broken", "waiting")]
    with django_capture_on_commit_callbacks() as enqueued:
        response = api_client.post(upload_url(kb.knowledge_base_id), {"files": files}, format="multipart")
    assert response.status_code == 201, response.content
    assert len(enqueued) == 4
    body = response.json()
    batch_id = body[0]["batch_id"]
    assert {f["batch_id"] for f in body} == {batch_id}
    assert response["Location"] == f"/api/v1/uploads/{batch_id}/"
    return {"kb": kb, "batch_id": batch_id, "files": {f["filename"].removesuffix(".pdf"): f for f in body}}


def test_batch_totals_while_files_are_still_running(api_client, batch):
    url = f"/api/v1/uploads/{batch['batch_id']}/"
    body = api_client.get(url).json()
    assert (body["total"], body["queued"], body["running"], body["completed"]) == (4, 4, 0, 0)

    files = batch["files"]
    assert pipeline.ingest_run(job_id=_job(files["done"]).pk)  # one file all the way through: both steps
    pipeline.embed_run(job_id=_job(files["done"]).pk)
    assert pipeline.ingest_run(job_id=_job(files["running"]).pk)  # one half-way: its embedding step not run yet
    objects_delete(keys=[f"kb/{batch['kb'].knowledge_base_id}/{files['broken']['file_id']}/original"])
    pipeline.ingest_run(job_id=_job(files["broken"]).pk)  # its stored original is gone: the job fails

    body = api_client.get(url).json()
    assert {k: body[k] for k in ("total", "queued", "running", "completed", "failed", "cancelled")} == {
        "total": 4, "queued": 1, "running": 1, "completed": 1, "failed": 1, "cancelled": 0}
    states = {f["filename"]: f["state"] for f in body["files"]}
    assert states == {"done.pdf": "completed", "running.pdf": "rendering", "broken.pdf": "failed",
                      "waiting.pdf": "queued"}
    done = next(f for f in body["files"] if f["filename"] == "done.pdf")
    assert done["pages_total"] == 2 and done["task_id"] == files["done"]["task_id"] and not done["deduplicated"]


def test_a_repeated_upload_reports_the_existing_file(api_client, batch):
    kb_id = batch["kb"].knowledge_base_id
    again = api_client.post(upload_url(kb_id), {"files": [
        uploaded("copy.pdf", samples.make_pdf(["waiting page one", "waiting page two"]))]}, format="multipart")
    assert again.status_code == 201
    body = api_client.get(f"/api/v1/uploads/{again.json()[0]['batch_id']}/").json()
    (item,) = body["files"]
    assert item["file_id"] == batch["files"]["waiting"]["file_id"] and item["deduplicated"]
    assert (body["total"], body["queued"]) == (1, 1)


def test_job_list_filters_by_state_and_kb_and_is_paginated(api_client, other_client, user, batch):
    pipeline.ingest_run(job_id=_job(batch["files"]["running"]).pk)  # rendering now (its next step not run)
    all_jobs = api_client.get("/api/v1/tasks/").json()
    assert all_jobs["count"] == 4
    assert {j["filename"] for j in all_jobs["results"]} == {"done.pdf", "running.pdf", "broken.pdf", "waiting.pdf"}
    assert {j["batch_id"] for j in all_jobs["results"]} == {batch["batch_id"]}
    running = api_client.get("/api/v1/tasks/", {"state": "running"}).json()
    assert [j["filename"] for j in running["results"]] == ["running.pdf"]
    assert api_client.get("/api/v1/tasks/", {"state": "queued"}).json()["count"] == 3
    page = api_client.get("/api/v1/tasks/", {"page_size": 3, "page": 2}).json()
    assert len(page["results"]) == 1 and page["previous"]

    other_kb = knowledge_base_create(user=user, name="Empty")
    assert api_client.get("/api/v1/tasks/", {"knowledge_base_id": other_kb.knowledge_base_id}).json()["count"] == 0
    assert api_client.get("/api/v1/tasks/", {"knowledge_base_id": batch["kb"].knowledge_base_id}
                          ).json()["count"] == 4
    assert api_client.get("/api/v1/tasks/", {"state": "sleeping"}).status_code == 400
    # Another user sees none of these, and the KB and the batch are 404 to them.
    assert other_client.get("/api/v1/tasks/").json()["count"] == 0
    assert other_client.get("/api/v1/tasks/", {"knowledge_base_id": batch["kb"].knowledge_base_id}
                            ).status_code == 404
    assert other_client.get(f"/api/v1/uploads/{batch['batch_id']}/").status_code == 404


def test_retry_reruns_a_failed_job_only(api_client, other_client, batch, django_capture_on_commit_callbacks):
    files = batch["files"]
    broken = _job(files["broken"])
    original = f"kb/{batch['kb'].knowledge_base_id}/{files['broken']['file_id']}/original"
    data = samples.make_pdf(["broken page one", "broken page two"])
    objects_delete(keys=[original])
    pipeline.ingest_run(job_id=broken.pk)
    broken.refresh_from_db()
    assert broken.state == "failed"

    url = f"/api/v1/tasks/{broken.task_id}/retry/"
    assert other_client.post(url).status_code == 404
    waiting = api_client.post(f"/api/v1/tasks/{files['waiting']['task_id']}/retry/")
    assert waiting.status_code == 409 and waiting.json()["error"]["code"] == "not_failed"

    from layra.storage import object_put

    object_put(key=original, data=data)  # the operator put the original back
    with django_capture_on_commit_callbacks(execute=True) as runs:
        response = api_client.post(url)
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "queued" and len(runs) >= 1
    broken.refresh_from_db()
    assert broken.state == "completed" and broken.pages_done == 2
    assert api_client.post(url).status_code == 409  # completed now: nothing to retry
