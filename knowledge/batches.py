"""Upload batches and the user's ingestion jobs: a multi-file upload's totals, the job list, a user's retry."""

from django.db.models import QuerySet

from accounts.models import User
from knowledge.documents import File
from knowledge.jobs import job_requeue
from knowledge.models import IngestionJob, UploadBatch
from knowledge.selectors import ingestion_job_get, knowledge_base_get
from knowledge.services import files_upload
from layra.errors import Conflict, NotFound, ValidationError
from layra.ids import new_id

State = IngestionJob.State
RUNNING = (State.CONVERTING, State.RENDERING, State.EMBEDDING, State.INDEXING)
TOTALS = ("queued", "running", "completed", "failed", "cancelled")
# `state=` of the job list: a job state, or `running` for any of the running ones.
STATE_FILTERS = {**{s.value: [s.value] for s in State}, "running": [s.value for s in RUNNING]}


def files_upload_batch(*, user: User, knowledge_base_id: str, uploaded_files: list, ip: str | None = None,
                       keep_both: bool = False) -> tuple[UploadBatch, list[File]]:
    """files_upload, recorded as one batch: the new files' jobs carry its id."""
    batch_id = new_id()
    files = files_upload(user=user, knowledge_base_id=knowledge_base_id, uploaded_files=uploaded_files, ip=ip,
                         batch_id=batch_id, keep_both=keep_both)
    batch = UploadBatch.objects.create(batch_id=batch_id, user=user, knowledge_base_id=knowledge_base_id,
                                       file_ids=list(dict.fromkeys(f.file_id for f in files)))
    return batch, files


def job_bucket(state: str) -> str:
    """The batch total a job state counts in."""
    return "running" if state in RUNNING or state == "processing" else state  # processing: a File's status


def upload_batch_status(*, user: User, batch_id: str) -> dict:
    """Totals (queued, running, completed, failed, cancelled) and each file's state; another user's is a 404.

    A new file's state is its job in the batch; a file whose content the KB already had is reported with its
    own latest job (or `deleted` once it is gone)."""
    batch = UploadBatch.objects.filter(batch_id=batch_id, user=user).first()
    if batch is None:
        raise NotFound("Upload batch not found.")
    jobs = {job.file_id: job for job in IngestionJob.objects.filter(batch_id=batch_id, user=user)}
    files = {f.file_id: f for f in File.objects(file_id__in=batch.file_ids, username=user.username)
             .only("file_id", "filename", "status", "task_id", "is_delete")}
    earlier = {job.task_id: job for job in IngestionJob.objects.filter(
        user=user, task_id__in=[f.task_id for i, f in files.items() if i not in jobs and f.task_id])}
    items = [_batch_item(file_id, file=files.get(file_id), job=jobs.get(file_id) or _earlier_job(
        files.get(file_id), earlier), deduplicated=file_id not in jobs) for file_id in batch.file_ids]
    totals = dict.fromkeys(TOTALS, 0)
    for item in items:
        if job_bucket(item["state"]) in totals:
            totals[job_bucket(item["state"])] += 1
    return {"batch_id": batch.batch_id, "knowledge_base_id": batch.knowledge_base_id,
            "created_at": batch.created_at, "total": len(items), **totals, "files": items}


def _earlier_job(file: File | None, earlier: dict) -> IngestionJob | None:
    return earlier.get(file.task_id) if file is not None else None


def _batch_item(file_id: str, *, file: File | None, job: IngestionJob | None, deduplicated: bool) -> dict:
    """One file of a batch: its job's state, or `deleted` once the file is gone."""
    state = "deleted" if file is None or file.is_delete else (job.state if job is not None else file.status)
    if job is None:
        return {"file_id": file_id, "filename": file.filename if file else "", "task_id": None, "state": state,
                "pages_total": 0, "pages_done": 0, "error": "", "deduplicated": deduplicated}
    return {"file_id": file_id, "filename": job.filename, "task_id": job.task_id, "state": state,
            "pages_total": job.pages_total, "pages_done": job.pages_done, "error": job.error,
            "deduplicated": deduplicated}


def ingestion_job_list(*, user: User, state: str | None = None,
                       knowledge_base_id: str | None = None) -> QuerySet[IngestionJob]:
    """The user's ingestion jobs, newest first; `state` a job state or `running`; a KB that is not the user's is
    a 404."""
    jobs = IngestionJob.objects.filter(user=user).order_by("-created_at", "-id")
    if state:
        if state not in STATE_FILTERS:
            raise ValidationError(f"Unknown state {state!r}.", details={"state": sorted(STATE_FILTERS)})
        jobs = jobs.filter(state__in=STATE_FILTERS[state])
    if knowledge_base_id:
        knowledge_base_get(user=user, knowledge_base_id=knowledge_base_id)
        jobs = jobs.filter(knowledge_base_id=knowledge_base_id)
    return jobs


def ingestion_job_retry(*, user: User, task_id: str) -> IngestionJob:
    """Run a failed job of the user's again from the start (409 for any other state or a deleted file)."""
    job = ingestion_job_get(user=user, task_id=task_id)
    if job.state != State.FAILED:
        raise Conflict(f"Only a failed job can be retried (this one is {job.state}).", code="not_failed")
    if not File.objects(file_id=job.file_id, username=user.username, is_delete=False).first():
        raise Conflict("The job's file was deleted.", code="file_deleted")
    return job_requeue(job=job, reason="")
