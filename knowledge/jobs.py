"""Operator actions on ingestion jobs: retry, requeue, cancel, fail, and stuck-job detection."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from knowledge import progress
from knowledge.documents import File, FileStatus
from knowledge.job_finish import ingestion_job_finish
from knowledge.models import IngestionJob
from knowledge.tasks import ingest_file
from layra.errors import Conflict

logger = logging.getLogger(__name__)
State = IngestionJob.State
REQUEUED_KEY = "requeued"  # recorded in stage_seconds: a stuck job is requeued once


def job_requeue(*, job: IngestionJob, reason: str = "") -> IngestionJob:
    """Run the job again from the start (ingest, then embed). Enqueued on commit."""
    with transaction.atomic():
        IngestionJob.objects.filter(pk=job.pk).update(state=State.QUEUED, error=reason, pages_done=0,
                                                      finished_at=None, updated_at=timezone.now())
        File.objects(file_id=job.file_id, is_delete=False).update_one(set__status=FileStatus.QUEUED,
                                                                     set__error=None, set__task_id=job.task_id)
        progress.progress_set(task_id=job.task_id, status=State.QUEUED, processed=0, total=0, message="Requeued")
        transaction.on_commit(lambda: ingest_file.delay(job.pk))
    job.refresh_from_db()
    return job


def job_retry(*, job: IngestionJob) -> IngestionJob:
    """Retry a failed or cancelled job (Conflict for any other state or a deleted file)."""
    if job.state not in (State.FAILED, State.CANCELLED):
        raise Conflict(f"Only failed or cancelled jobs can be retried (this one is {job.state}).")
    if not File.objects(file_id=job.file_id, is_delete=False).first():
        raise Conflict("The job's file was deleted.")
    return job_requeue(job=job)


def job_cancel(*, job: IngestionJob, reason: str = "Cancelled by an operator.") -> IngestionJob:
    """Cancel a job that has not ended (Conflict otherwise); its file ends with it."""
    if job.is_terminal:
        raise Conflict(f"The job is already {job.state}.")
    ingestion_job_finish(job=job, state=State.CANCELLED, reason=reason)
    return job


def job_fail(*, job: IngestionJob, reason: str) -> None:
    """Fail a job whatever its state (stuck, or its stored original is gone); its file ends with it."""
    ingestion_job_finish(job=job, state=State.FAILED, reason=reason)


def stuck_jobs_handle(*, stuck_after_s: int | None = None, dry_run: bool = False) -> dict:
    """Jobs not terminal and not updated for stuck_after_s: requeue once, then fail with a reason."""
    stuck_after_s = stuck_after_s if stuck_after_s is not None else settings.OPS_STUCK_JOB_AFTER_S
    cutoff = timezone.now() - timedelta(seconds=stuck_after_s)
    out = {"requeued": [], "failed": []}
    for job in IngestionJob.objects.exclude(state__in=IngestionJob.TERMINAL).filter(updated_at__lt=cutoff):
        if job.stage_seconds.get(REQUEUED_KEY):
            out["failed"].append(job.task_id)
            if not dry_run:
                job_fail(job=job, reason=f"Stuck: no progress for {stuck_after_s}s after a requeue.")
                logger.warning("stuck job %s failed", job.task_id)
            continue
        out["requeued"].append(job.task_id)
        if not dry_run:
            stages = dict(job.stage_seconds or {}, **{REQUEUED_KEY: 1})
            IngestionJob.objects.filter(pk=job.pk).update(stage_seconds=stages)
            job.stage_seconds = stages
            job_requeue(job=job, reason=f"Requeued: no progress for {stuck_after_s}s.")
            logger.warning("stuck job %s requeued", job.task_id)
    return out
