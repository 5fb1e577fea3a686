"""Writes for knowledge bases, files and ingestion jobs."""

import hashlib
import mmap
from contextlib import contextmanager

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from accounts.models import User
from accounts.services import audit_log_record
from knowledge import progress
from knowledge.detect import detect, sanitize_filename
from knowledge.documents import File, FileStatus, KnowledgeBase
from knowledge.invalidation import kb_cache_invalidate, kb_version_bump, knowledge_base_list_invalidate  # noqa: F401
from knowledge.job_finish import CANCELLED_REASON, ingestion_job_finish
from knowledge.keys import original_key
from knowledge.models import IngestionJob
from knowledge.selectors import ingestion_job_get, knowledge_base_get
from knowledge.tasks import ingest_file
from knowledge.trash import file_trash, knowledge_base_trash
from knowledge.versions import version_fields, version_hide_new
from layra.errors import PayloadTooLarge, ValidationError
from layra.ids import new_id
from layra.storage import object_put_file, objects_delete


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
    """To the trash with its files, invisible at once; restored or purged later (knowledge.trash)."""
    knowledge_base_trash(user=user, knowledge_base_id=knowledge_base_id)


def _check_size(uploaded: UploadedFile) -> None:
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
                 ip: str | None = None, batch_id: str = "", keep_both: bool = False) -> list[File]:
    """Validate every file first (nothing is stored if one is refused), then store, record and enqueue.

    Files are inspected where Django spooled them and copied to storage in chunks, never read whole.

    Content already in the KB (same sha256) returns the existing file instead of ingesting it again. Other content
    under a name the KB already has is that file's next version (knowledge.versions), unless `keep_both`.
    """
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
                status__nin=[FileStatus.FAILED, FileStatus.CANCELLED]).first()
            if existing is not None:
                results.append(existing)
                continue
            file_id = new_id()
            key = original_key(knowledge_base_id=kb.knowledge_base_id, file_id=file_id)
            object_put_file(key=key, fileobj=uploaded)  # copied in chunks
            versioning = version_fields(knowledge_base_id=kb.knowledge_base_id, filename=name, file_id=file_id) \
                if not keep_both else {"document_id": file_id}
            file = File(file_id=file_id, knowledge_db_id=kb.knowledge_base_id, username=user.username,
                        filename=name, minio_filename=key, content_type=detected.content_type, kind=detected.kind,
                        size=size, sha256=digest, status=FileStatus.QUEUED, page_count=0, **versioning)
            new_files.append(file)
            file.save()
            version_hide_new(file=file)
            seen[digest] = file
            results.append(file)
        with transaction.atomic():
            for file in new_files:
                job = IngestionJob.objects.create(user=user, knowledge_base_id=kb.knowledge_base_id,
                                                  file_id=file.file_id, filename=file.filename, batch_id=batch_id)
                file.task_id = job.task_id
                file.save()
                progress.progress_set(task_id=job.task_id, status=job.state, processed=0, total=0,
                                      message="Queued")
                transaction.on_commit(lambda pk=job.pk: ingest_file.delay(pk))
    except Exception:
        for file in new_files:  # nothing left behind when storing or recording fails
            objects_delete(keys=[file.minio_filename])
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
    """To the trash, hidden from search at once; restored or purged later (knowledge.trash)."""
    file_trash(user=user, file_id=file_id, ip=ip)


def ingestion_job_cancel(*, user: User, task_id: str) -> IngestionJob:
    """The user's cancel: a job still running ends as cancelled, its file with it; a finished one is unchanged."""
    job = ingestion_job_get(user=user, task_id=task_id)
    if not job.is_terminal:
        ingestion_job_finish(job=job, state=IngestionJob.State.CANCELLED, reason=CANCELLED_REASON)
    return job
