"""How an ingestion job ends when it does not complete: the one path for a user's cancel, an operator's cancel or
fail, and the pipeline's own failure or stop (knowledge.jobs, knowledge.services, knowledge.pipeline)."""

import logging

from django.db.models import QuerySet
from django.utils import timezone

from knowledge import progress
from knowledge.documents import File, FileStatus
from knowledge.invalidation import kb_cache_invalidate, kb_version_bump
from knowledge.models import IngestionJob
from knowledge.outputs import file_outputs_remove

logger = logging.getLogger(__name__)
State = IngestionJob.State
CANCELLED_REASON = "Cancelled."


def _end(rows: QuerySet, *, state: State, reason: str) -> int:
    """End these job rows in one write; a cancel is final (no other state overwrites it)."""
    now = timezone.now()
    rows = rows.exclude(state=State.CANCELLED)
    if state == State.CANCELLED:
        rows = rows.exclude(state__in=IngestionJob.TERMINAL)  # a finished job is not cancelled afterwards
    return rows.update(state=state, error=reason, finished_at=now, updated_at=now)


def ingestion_job_finish(*, job: IngestionJob, state: State, reason: str) -> bool:
    """End a job as failed or cancelled, and its file with it.

    The job gets the state, the reason and `finished_at`, unless it has already ended (a cancel is final; a
    completed job is not cancelled). Unless the job completed, its file then follows the job's state: its page
    images and vectors are removed (a failed or cancelled file keeps none), and its progress says why.
    Safe to repeat. Returns whether this call ended the job; `job` is refreshed."""
    ended = bool(_end(IngestionJob.objects.filter(pk=job.pk), state=state, reason=reason))
    job.refresh_from_db()
    if job.state not in (State.FAILED, State.CANCELLED):
        return False  # it completed before the cancel
    _file_end(job)
    progress.progress_set(task_id=job.task_id, status=job.state, message=job.error)
    return ended


def _file_end(job: IngestionJob) -> None:
    file = File.objects(file_id=job.file_id).first()
    if file is None:
        kb_cache_invalidate(knowledge_base_id=job.knowledge_base_id)
        return
    try:
        file_outputs_remove(file)
    except Exception:  # noqa: BLE001 - removed again by a delete or the nightly cleanup; the file ends anyway
        logger.exception("cleanup of file %s failed", file.file_id)
    File.objects(file_id=file.file_id).update_one(set__status=FileStatus(job.state), set__error=job.error or None,
                                                  set__images=[], set__page_count=0)
    if file.status == FileStatus.COMPLETED:
        kb_version_bump(knowledge_base_id=file.knowledge_db_id)  # its pages could be found until now
    else:
        kb_cache_invalidate(knowledge_base_id=file.knowledge_db_id)


DELETED_REASON = "Deleted while it was being ingested."


def ingestion_jobs_end_deleted(*, jobs: QuerySet) -> int:
    """End these jobs, if still running, as cancelled and their files with them (status cancelled, no page images or
    vectors): a file that goes to the trash while being ingested comes back from it as cancelled, to be retried.
    Returns how many were still running."""
    ended = 0
    for job in jobs.exclude(state__in=IngestionJob.TERMINAL):
        ended += ingestion_job_finish(job=job, state=State.CANCELLED, reason=DELETED_REASON)
    return ended
