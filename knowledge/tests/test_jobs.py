"""Stuck-job detection: no progress for the configured time -> requeue once, then fail with a reason."""

from datetime import timedelta

import pytest
from django.utils import timezone

from knowledge import samples
from knowledge.documents import File
from knowledge.jobs import job_cancel, job_fail, job_retry, stuck_jobs_handle
from knowledge.models import IngestionJob
from knowledge.selectors import counts_cache_key, knowledge_base_detail, summary_cache_key
from layra.errors import Conflict
from layra.redis import redis_client
from operations.tasks import stuck_jobs
from tests.knowledge_helpers import bucket_keys
from tests.operators_helpers import ingest

pytestmark = pytest.mark.django_db


def _stall(job, state="rendering", seconds=3600):
    IngestionJob.objects.filter(pk=job.pk).update(state=state, updated_at=timezone.now() - timedelta(seconds=seconds))


def test_stuck_job_is_requeued_once_then_failed(user, django_capture_on_commit_callbacks, settings):
    settings.OPS_STUCK_JOB_AFTER_S = 600
    kb, files = ingest(user, django_capture_on_commit_callbacks, docs={"a.txt": b"stuck job text"})
    job = IngestionJob.objects.get(file_id=files[0].file_id)
    _stall(job, seconds=60)  # recent: not stuck
    assert stuck_jobs_handle() == {"requeued": [], "failed": []}

    _stall(job)
    assert stuck_jobs_handle(dry_run=True) == {"requeued": [job.task_id], "failed": []}
    with django_capture_on_commit_callbacks(execute=True):
        assert stuck_jobs() == {"requeued": [job.task_id], "failed": []}
    job.refresh_from_db()
    assert job.state == "completed" and job.stage_seconds.get("requeued") == 1  # ran again to the end
    assert File.objects.get(file_id=job.file_id).status == "completed"

    _stall(job, state="embedding")
    assert stuck_jobs_handle() == {"requeued": [], "failed": [job.task_id]}
    job.refresh_from_db()
    assert job.state == "failed" and "Stuck" in job.error
    file = File.objects.get(file_id=job.file_id)
    assert file.status == "failed" and file.images == [] and "Stuck" in file.error


def test_retry_and_cancel(user, django_capture_on_commit_callbacks):
    kb, files = ingest(user, django_capture_on_commit_callbacks, docs={"a.txt": b"retry me"})
    job = IngestionJob.objects.get(file_id=files[0].file_id)
    with pytest.raises(Conflict):
        job_retry(job=job)  # completed
    IngestionJob.objects.filter(pk=job.pk).update(state="failed", error="boom")
    job.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        job_retry(job=job)
    job.refresh_from_db()
    assert job.state == "completed" and job.error == ""
    IngestionJob.objects.filter(pk=job.pk).update(state="rendering")
    job.refresh_from_db()
    job_cancel(job=job)
    assert job.state == "cancelled"
    with pytest.raises(Conflict):
        job_cancel(job=job)


def test_failing_a_job_drops_the_cached_counts_of_its_knowledge_base(user, django_capture_on_commit_callbacks):
    kb, files = ingest(user, django_capture_on_commit_callbacks, docs={"a.pdf": samples.make_pdf(["one", "two"])})
    kb_id = kb.knowledge_base_id
    redis_client("cache").delete(summary_cache_key(kb_id), counts_cache_key(kb_id))  # the ingest's tombstones
    assert knowledge_base_detail(user=user, knowledge_base_id=kb_id)["page_count"] == 2
    assert redis_client("cache").ttl(summary_cache_key(kb_id)) > 60  # filled now (a drop's tombstone lives seconds)
    job = IngestionJob.objects.get(file_id=files[0].file_id)
    job_fail(job=job, reason="The stored original is missing.")
    job.refresh_from_db()
    assert job.state == "failed" and job.finished_at is not None
    assert File.objects.get(file_id=job.file_id).page_count == 0
    assert knowledge_base_detail(user=user, knowledge_base_id=kb_id)["page_count"] == 0


def test_an_operator_cancel_ends_the_job_and_its_file_without_outputs(user, django_capture_on_commit_callbacks):
    kb, files = ingest(user, django_capture_on_commit_callbacks, docs={"a.txt": b"cancel me"})
    job = IngestionJob.objects.get(file_id=files[0].file_id)
    IngestionJob.objects.filter(pk=job.pk).update(state="embedding", finished_at=None)  # its worker died
    File.objects(file_id=job.file_id).update_one(set__status="processing")
    job.refresh_from_db()
    job_cancel(job=job)
    assert job.state == "cancelled" and job.error == "Cancelled by an operator." and job.finished_at is not None
    file = File.objects.get(file_id=job.file_id)
    assert file.status == "cancelled" and file.error == "Cancelled by an operator." and file.images == []
    assert bucket_keys(f"kb/{kb.knowledge_base_id}/{file.file_id}/pages/") == []
    assert knowledge_base_detail(user=user, knowledge_base_id=kb.knowledge_base_id)["page_count"] == 0
