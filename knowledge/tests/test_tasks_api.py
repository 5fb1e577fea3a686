import pytest
from django.utils import timezone

from knowledge import pipeline, samples
from knowledge.documents import File
from knowledge.models import IngestionJob
from knowledge.progress import progress_get, progress_set
from knowledge.services import file_delete, files_upload, knowledge_base_create
from layra.redis import redis_client
from tests.knowledge_helpers import bucket_keys, uploaded

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_file(user):
    kb = knowledge_base_create(user=user, name="Tasks")
    return files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                        uploaded_files=[uploaded("a.pdf", samples.make_pdf(["one", "two"]))])[0]


def test_progress_hash_has_a_ttl_and_an_eta(api_client, queued_file):
    key = f"task:{queued_file.task_id}"
    assert redis_client("task").hget(key, "status") == "queued"
    assert 0 < redis_client("task").ttl(key) <= 3600
    progress_set(task_id=queued_file.task_id, status="rendering", processed=0, total=100, message="x")
    progress_set(task_id=queued_file.task_id, status="rendering", processed=25, total=100, message="x")
    redis_client("task").hset(key, "started_at", float(redis_client("task").hget(key, "updated_at")) - 5)
    live = progress_get(task_id=queued_file.task_id)
    assert live["processed"] == 25 and live["eta_seconds"] == pytest.approx(15, abs=0.5)
    body = api_client.get(f"/api/v1/tasks/{queued_file.task_id}/").json()
    assert (body["state"], body["processed"], body["total"]) == ("queued", 25, 100)
    assert body["eta_seconds"] == pytest.approx(15, abs=0.5)


def test_cancel_before_the_worker_runs_leaves_nothing_rendered(api_client, user, queued_file):
    response = api_client.post(f"/api/v1/tasks/{queued_file.task_id}/cancel")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    job = IngestionJob.objects.get(task_id=queued_file.task_id)
    assert pipeline.ingest_run(job_id=job.pk) is False  # the queued message is a no-op now
    file = File.objects.get(file_id=queued_file.file_id)
    assert file.status == "cancelled" and file.images == []
    assert bucket_keys() == [file.minio_filename]  # only the original, no page images
    events = b"".join(api_client.get(f"/api/v1/tasks/{queued_file.task_id}/events").streaming_content).decode()
    assert events.index("event: progress") < events.index("event: end")
    assert '"state": "cancelled"' in events
    # cancelling twice is harmless
    assert api_client.post(f"/api/v1/tasks/{queued_file.task_id}/cancel").json()["state"] == "cancelled"


def test_a_job_cancelled_while_queued_gets_its_finished_at(api_client, user, queued_file):
    before = timezone.now()
    assert api_client.post(f"/api/v1/tasks/{queued_file.task_id}/cancel").status_code == 200
    job = IngestionJob.objects.get(task_id=queued_file.task_id)
    assert job.state == "cancelled" and job.error == "Cancelled."
    assert job.finished_at is not None and before <= job.finished_at <= timezone.now()
    assert api_client.get(f"/api/v1/tasks/{queued_file.task_id}/").json()["finished_at"] is not None
    finished_at = job.finished_at
    assert pipeline.ingest_run(job_id=job.pk) is False  # the queued message arrives afterwards: a no-op
    api_client.post(f"/api/v1/tasks/{queued_file.task_id}/cancel")  # and so is a second cancel
    job.refresh_from_db()
    assert job.state == "cancelled" and job.finished_at == finished_at


def test_deleting_a_file_ends_its_queued_job_and_it_comes_back_from_the_trash_cancelled(user, queued_file):
    from knowledge.documents import File
    from knowledge.jobs import job_retry
    from knowledge.trash import file_restore

    file_delete(user=user, file_id=queued_file.file_id)
    job = IngestionJob.objects.get(task_id=queued_file.task_id)
    assert job.state == "cancelled" and job.finished_at is not None
    assert job.error == "Deleted while it was being ingested."
    restored = file_restore(user=user, file_id=queued_file.file_id)
    assert restored.status == "cancelled" and not restored.is_delete  # not left "queued" with no job to run it
    job_retry(job=job)
    assert File.objects.get(file_id=queued_file.file_id).status == "queued"


def test_cancel_while_rendering_stops_and_removes_page_images(user, queued_file, settings, monkeypatch):
    settings.KNOWLEDGE_PAGE_BATCH = 1
    job = IngestionJob.objects.get(task_id=queued_file.task_id)
    real_report = pipeline._report

    def cancel_after_first_page(job_, state, done, message):
        real_report(job_, state, done, message)
        if done == 1:
            IngestionJob.objects.filter(pk=job_.pk).update(state="cancelled")

    monkeypatch.setattr(pipeline, "_report", cancel_after_first_page)  # the user cancels mid-file
    assert pipeline.ingest_run(job_id=job.pk) is False
    job.refresh_from_db()
    file = File.objects.get(file_id=queued_file.file_id)
    assert job.state == "cancelled" and file.status == "cancelled" and file.images == []
    assert bucket_keys(f"kb/{file.knowledge_db_id}/{file.file_id}/pages/") == []


def test_unknown_task_is_404(api_client):
    assert api_client.get("/api/v1/tasks/nope/").status_code == 404
    assert api_client.post("/api/v1/tasks/nope/cancel").status_code == 404
