"""Stuck-job detection: no progress for the configured time -> requeue once, then fail with a reason."""

from datetime import timedelta

import pytest
from django.utils import timezone

from knowledge.documents import File
from knowledge.jobs import job_cancel, job_retry, stuck_jobs_handle
from knowledge.models import IngestionJob
from layra.errors import Conflict
from layra.tasks import stuck_jobs
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
