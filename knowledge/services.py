"""Writes for knowledge bases, files and ingestion jobs."""

import hashlib
import mmap
from contextlib import contextmanager

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from accounts.models import User
from accounts.services import audit_log_record
from knowledge import pipeline, progress
from knowledge.detect import detect, sanitize_filename
from knowledge.documents import File, KnowledgeBase, utcnow
from knowledge.models import IngestionJob
from knowledge.selectors import (
    counts_cache_key,
    file_get,
    ingestion_job_get,
    knowledge_base_get,
    own_ids_cache_key,
    summary_cache_key,
)
from layra import cache
from layra.errors import PayloadTooLarge, ValidationError
from layra.ids import new_id


def kb_cache_invalidate(*, knowledge_base_id: str) -> None:
    """After any write to a KB, its version or its files: its cached summary and counts are stale."""
    cache.drop(summary_cache_key(knowledge_base_id), counts_cache_key(knowledge_base_id))


def knowledge_base_list_invalidate(*, user: User) -> None:
    """After a KB of the user's is created or deleted: their cached list of KB ids is stale."""
    cache.drop(own_ids_cache_key(user.username))


def kb_version_bump(*, knowledge_base_id: str, **also_set) -> None:
    """A change to what a search of the KB finds: bump its version (the search cache key holds it), set
    `also_set` fields in the same write, and drop its cached summary, which carries the version."""
    also_set.setdefault("last_modify_at", utcnow())  # search reads strongly for a while after (knowledge.search)
    KnowledgeBase.objects(knowledge_base_id=knowledge_base_id).update_one(
        inc__version=1, **{f"set__{name}": value for name, value in also_set.items()})
    kb_cache_invalidate(knowledge_base_id=knowledge_base_id)


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError("Knowledge base name is empty.")
    if len(name) > 200:
        raise ValidationError("Knowledge base name is longer than 200 characters.")
    return name


def knowledge_base_create(*, user: User, name: str, is_temp: bool = False,
                          conversation_id: str | None = None) -> KnowledgeBase:
    kb = KnowledgeBase(knowledge_base_id=new_id(), knowledge_base_name=_clean_name(name), username=user.username,
                       is_temp=is_temp, conversation_id=conversation_id)
    kb.save()
    knowledge_base_list_invalidate(user=user)
    audit_log_record(user=user, action="kb.create", resource_type="knowledge_base",
                     resource_id=kb.knowledge_base_id)
    return kb


def knowledge_base_rename(*, user: User, knowledge_base_id: str, name: str) -> KnowledgeBase:
    kb = knowledge_base_get(user=user, knowledge_base_id=knowledge_base_id)
    kb.knowledge_base_name = _clean_name(name)
    kb.save()
    kb_cache_invalidate(knowledge_base_id=kb.knowledge_base_id)
    return kb


def knowledge_base_delete(*, user: User, knowledge_base_id: str) -> None:
    """Invisible at once (KB and its files soft-deleted, jobs cancelled); the purge runs in a task."""
    from knowledge.tasks import purge_knowledge_base

    kb = knowledge_base_get(user=user, knowledge_base_id=knowledge_base_id)
    kb_version_bump(knowledge_base_id=kb.knowledge_base_id, is_delete=True)
    knowledge_base_list_invalidate(user=user)
    File.objects(knowledge_db_id=kb.knowledge_base_id).update(set__is_delete=True)
    _jobs_cancel(IngestionJob.objects.filter(knowledge_base_id=kb.knowledge_base_id))
    audit_log_record(user=user, action="kb.delete", resource_type="knowledge_base",
                     resource_id=kb.knowledge_base_id)
    transaction.on_commit(lambda: purge_knowledge_base.delay(kb.knowledge_base_id))


def knowledge_base_purge(*, knowledge_base_id: str) -> None:
    """Remove a deleted KB everywhere: collection, objects, file records, jobs. Safe to repeat."""
    from embeddings.services import knowledge_base_index_delete

    kb = KnowledgeBase.objects(knowledge_base_id=knowledge_base_id).first()
    if kb is None or not kb.is_delete:
        return
    knowledge_base_index_delete(knowledge_base_id=knowledge_base_id)
    for prefix in pipeline.kb_prefixes(kb):
        pipeline.objects_delete_prefix(prefix)
    for job in IngestionJob.objects.filter(knowledge_base_id=knowledge_base_id):
        progress.progress_delete(task_id=job.task_id)
    IngestionJob.objects.filter(knowledge_base_id=knowledge_base_id).delete()
    File.objects(knowledge_db_id=knowledge_base_id).delete()
    kb.delete()
    kb_cache_invalidate(knowledge_base_id=knowledge_base_id)


def _jobs_cancel(jobs) -> int:
    return jobs.exclude(state__in=IngestionJob.TERMINAL).update(state=IngestionJob.State.CANCELLED,
                                                                error="Cancelled.")


def _check_size(uploaded: UploadedFile) -> None:
    from django.conf import settings

    if uploaded.size is not None and uploaded.size > settings.KNOWLEDGE_MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"'{uploaded.name}' is larger than {settings.KNOWLEDGE_MAX_UPLOAD_BYTES} bytes.",
                              code="file_too_large")


@contextmanager
def _upload_view(uploaded: UploadedFile):
    """The upload's bytes to inspect and hash: a read-only memory map of the temporary file Django spooled it to
    (pages come from the page cache as they are read; nothing is copied into the process), or the bytes of a
    small upload Django kept in memory."""
    path = getattr(uploaded, "temporary_file_path", None)
    if path is not None and uploaded.size:
        with open(path(), "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
            yield view
        return
    uploaded.seek(0)
    yield uploaded.read()


def files_upload(*, user: User, knowledge_base_id: str, uploaded_files: list[UploadedFile],
                 ip: str | None = None) -> list[File]:
    """Validate every file first (nothing is stored if one is refused), then store, record and enqueue.

    Files are inspected where Django spooled them and copied to storage in chunks, never read whole.

    Content already in the KB (same sha256) returns the existing file instead of ingesting it again.
    """
    from django.conf import settings

    from knowledge.tasks import ingest_file

    kb = knowledge_base_get(user=user, knowledge_base_id=knowledge_base_id)
    if not uploaded_files:
        raise ValidationError("No files were uploaded.", code="no_files")
    if len(uploaded_files) > settings.KNOWLEDGE_MAX_BATCH_FILES:
        raise ValidationError(f"At most {settings.KNOWLEDGE_MAX_BATCH_FILES} files per upload.",
                              code="too_many_files")
    checked = []
    for uploaded in uploaded_files:
        name = sanitize_filename(uploaded.name)
        _check_size(uploaded)
        with _upload_view(uploaded) as data:
            detected = detect(data, name=name)
            checked.append((name, uploaded, len(data), detected, hashlib.sha256(data).hexdigest()))

    results: list[File] = []
    new_files: list[File] = []
    seen: dict[str, File] = {}
    try:
        for name, uploaded, size, detected, digest in checked:
            existing = seen.get(digest) or File.objects(
                knowledge_db_id=kb.knowledge_base_id, sha256=digest, is_delete=False,
                status__nin=["failed", "cancelled"]).first()
            if existing is not None:
                results.append(existing)
                continue
            file_id = new_id()
            key = pipeline.original_key(knowledge_base_id=kb.knowledge_base_id, file_id=file_id)
            pipeline.object_put_file(key, uploaded)  # copied in chunks
            file = File(file_id=file_id, knowledge_db_id=kb.knowledge_base_id, username=user.username,
                        filename=name, minio_filename=key, content_type=detected.content_type, kind=detected.kind,
                        size=size, sha256=digest, status="queued", page_count=0)
            new_files.append(file)
            file.save()
            seen[digest] = file
            results.append(file)
        with transaction.atomic():
            for file in new_files:
                job = IngestionJob.objects.create(user=user, knowledge_base_id=kb.knowledge_base_id,
                                                  file_id=file.file_id, filename=file.filename)
                file.task_id = job.task_id
                file.save()
                progress.progress_set(task_id=job.task_id, status=job.state, processed=0, total=0,
                                      message="Queued")
                transaction.on_commit(lambda pk=job.pk: ingest_file.delay(pk))
    except Exception:
        for file in new_files:  # nothing left behind when storing or recording fails
            pipeline.objects_delete([file.minio_filename])
            File.objects(file_id=file.file_id).delete()
        raise
    if new_files:
        kb_cache_invalidate(knowledge_base_id=kb.knowledge_base_id)
    for file in new_files:
        audit_log_record(user=user, action="file.upload", resource_type="file", resource_id=file.file_id,
                         details={"knowledge_base_id": kb.knowledge_base_id, "filename": file.filename,
                                  "size": file.size, "kind": file.kind}, ip=ip)
    return results


def file_delete(*, user: User, file_id: str, ip: str | None = None) -> None:
    from knowledge.tasks import purge_file

    file = file_get(user=user, file_id=file_id)
    File.objects(file_id=file.file_id).update_one(set__is_delete=True)
    _jobs_cancel(IngestionJob.objects.filter(file_id=file.file_id))
    kb_version_bump(knowledge_base_id=file.knowledge_db_id)
    audit_log_record(user=user, action="file.delete", resource_type="file", resource_id=file.file_id,
                     details={"knowledge_base_id": file.knowledge_db_id, "filename": file.filename}, ip=ip)
    transaction.on_commit(lambda: purge_file.delay(file.file_id))


def file_purge(*, file_id: str) -> None:
    """Remove a deleted file's vectors, objects, record and jobs. Safe to repeat."""
    file = File.objects(file_id=file_id).first()
    if file is None or not file.is_delete:
        return
    pipeline.file_outputs_remove(file)
    pipeline.objects_delete_prefix(pipeline.file_prefix_of(file))
    for job in IngestionJob.objects.filter(file_id=file_id):
        progress.progress_delete(task_id=job.task_id)
    IngestionJob.objects.filter(file_id=file_id).delete()
    file.delete()


def ingestion_job_cancel(*, user: User, task_id: str) -> IngestionJob:
    job = ingestion_job_get(user=user, task_id=task_id)
    if _jobs_cancel(IngestionJob.objects.filter(pk=job.pk)):
        File.objects(file_id=job.file_id, status__in=["queued", "processing"]).update_one(set__status="cancelled",
                                                                                          set__error="Cancelled.")
        progress.progress_set(task_id=job.task_id, status=IngestionJob.State.CANCELLED, message="Cancelled.")
        kb_cache_invalidate(knowledge_base_id=job.knowledge_base_id)
    job.refresh_from_db()
    return job
