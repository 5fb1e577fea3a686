"""Versions of a file: a re-upload under a name the KB already has, with other content, is the document's next
version (a new `file_id`, the same `document_id`, `version` n+1).

A new version is hidden from search while it is ingested (knowledge.hidden), so search answers from the current
version until then. When its ingestion completes, one write on the KB shows it and hides the version it replaces,
which goes to the trash with `replaced_by`: a search reads the old version or the new one, never both. Restoring
an old version from the trash makes it current again the same way and sends the newer one to the trash.
"""

from mongoengine.queryset.visitor import Q

from accounts.models import User
from knowledge.documents import File, FileStatus
from knowledge.hidden import file_to_trash, kb_hidden_change
from knowledge.job_finish import ingestion_jobs_end_deleted
from knowledge.models import IngestionJob
from knowledge.selectors import file_get

_NOT_VERSIONED = [FileStatus.FAILED, FileStatus.CANCELLED]


def document_of(file: File) -> str:
    return file.document_id or file.file_id


def version_fields(*, knowledge_base_id: str, filename: str, file_id: str) -> dict:
    """The new file's document_id, version and `replaces` (the live file of that name it will replace, if any).

    Called for content the KB does not hold yet (identical content is deduplicated before)."""
    same = (File.objects(knowledge_db_id=knowledge_base_id, filename=filename, is_delete=False,
                         status__nin=_NOT_VERSIONED).order_by("-created_at").only("file_id", "document_id", "version")
            .first())
    if same is None:
        return {"document_id": file_id, "version": 1, "replaces": None}
    document_id = document_of(same)
    if same.document_id is None:  # a file stored before versions existed
        File.objects(file_id=same.file_id).update_one(set__document_id=document_id)
    top = File.objects(document_id=document_id).order_by("-version").only("version").first()
    version = max(top.version if top else 1, same.version or 1) + 1
    return {"document_id": document_id, "version": version, "replaces": same.file_id}


def version_hide_new(*, file: File) -> None:
    """A new version is not searchable until its ingestion completes (before its job is enqueued)."""
    if file.replaces:
        kb_hidden_change(knowledge_base_id=file.knowledge_db_id, hide=[file.file_id])


def _live_versions(file: File) -> list[File]:
    return [f for f in File.objects(knowledge_db_id=file.knowledge_db_id, document_id=document_of(file),
                                    is_delete=False, file_id__ne=file.file_id)]


def _replace(*, file: File, replaced: list[File]) -> None:
    """One write shows `file` and hides `replaced` (the swap), then the replaced go to the trash."""
    kb_hidden_change(knowledge_base_id=file.knowledge_db_id, show=[file.file_id], hide=[f.file_id for f in replaced])
    for old in replaced:
        file_to_trash(file=old, replaced_by=file.file_id, hidden=True)
        ingestion_jobs_end_deleted(jobs=IngestionJob.objects.filter(file_id=old.file_id))
    File.objects(file_id=file.file_id).update_one(set__replaces=None)


def version_complete(*, file_id: str) -> None:
    """A file's ingestion completed: a new version replaces the document's older live versions now. One that a
    newer version overtook while it ran goes to the trash itself (replaced by that one)."""
    file = File.objects(file_id=file_id, is_delete=False).first()
    if file is None:
        return
    if not file.replaces:
        # A file restored from the trash before it ever completed is still on the hidden list: its completion
        # shows it (a no-op read for every other file).
        kb_hidden_change(knowledge_base_id=file.knowledge_db_id, show=[file.file_id])
        return
    others = _live_versions(file)
    newer = [f for f in others if f.version > file.version and not f.replaces and f.status == FileStatus.COMPLETED]
    if newer:
        file_to_trash(file=file, replaced_by=newer[0].file_id, hidden=True)
        File.objects(file_id=file.file_id).update_one(set__replaces=None)
        return
    _replace(file=file, replaced=[f for f in others if f.version < file.version])


def version_make_current(*, file: File) -> None:
    """A completed file restored from the trash is its document's current version: the live ones that are not new
    versions still being ingested go to the trash, replaced by it."""
    _replace(file=file, replaced=[f for f in _live_versions(file) if not f.replaces])


def file_versions(*, user: User, file_id: str) -> list[File]:
    """Every version of the file's document still stored (live or in the trash), newest first."""
    file = file_get(user=user, file_id=file_id)
    document_id = document_of(file)
    return list(File.objects(Q(document_id=document_id) | Q(file_id=document_id), username=user.username,
                             knowledge_db_id=file.knowledge_db_id).exclude("images").order_by("-version"))


def version_to_dict(file: File) -> dict:
    return {"file_id": file.file_id, "document_id": document_of(file), "version": file.version or 1,
            "filename": file.filename, "status": file.status, "sha256": file.sha256, "size": file.size,
            "current": not file.is_delete and not file.replaces, "in_trash": bool(file.is_delete),
            "deleted_at": file.deleted_at, "replaces": file.replaces, "replaced_by": file.replaced_by,
            "created_at": file.created_at}
