"""The trash of knowledge bases and files: a delete moves an item there (`is_delete` + `deleted_at`), invisible to
lists, search and chat at once while its vectors, page images and objects stay as they are; a restore brings it
back whole, a purge (now, or by the nightly cleanup after TRASH_RETENTION_DAYS) removes it everywhere.

A KB's live files go to the trash with it (`trashed_with`) and come back with it; a file deleted before stays in
the trash on its own. Files in the trash of a live KB are hidden from search by the KB's hidden list
(knowledge.hidden); a KB in the trash is not searched at all.
"""

from datetime import datetime

from django.db import transaction

from accounts.models import User
from accounts.services import audit_log_record
from knowledge.documents import File, FileStatus, KnowledgeBase, utcnow
from knowledge.hidden import file_to_trash
from knowledge.invalidation import kb_cache_invalidate, kb_version_bump, knowledge_base_list_invalidate
from knowledge.job_finish import ingestion_jobs_end_deleted
from knowledge.models import IngestionJob
from knowledge.purge import file_purge, knowledge_base_purge
from knowledge.selectors import file_get, knowledge_base_get
from knowledge.versions import version_make_current
from layra.errors import Conflict, NotFound

KB_MARK = "knowledge_base:"


def _kb_mark(knowledge_base_id: str) -> str:
    return KB_MARK + knowledge_base_id


# --- knowledge bases -----------------------------------------------------------------------------------


def knowledge_base_trash(*, user: User, knowledge_base_id: str, trashed_with: str | None = None) -> None:
    """Move a KB and its live files to the trash; its ingestion jobs still running are cancelled.

    `trashed_with` names what took it there (a conversation's temporary KB goes with its conversation): such a KB
    is not listed in the trash on its own and comes back with its owner (knowledge_bases_restore_with)."""
    kb = knowledge_base_get(user=user, knowledge_base_id=knowledge_base_id)
    now = utcnow()
    kb_version_bump(knowledge_base_id=kb.knowledge_base_id, is_delete=True, deleted_at=now, trashed_with=trashed_with)
    File.objects(knowledge_db_id=kb.knowledge_base_id, is_delete=False).update(
        set__is_delete=True, set__deleted_at=now, set__trashed_with=_kb_mark(kb.knowledge_base_id))
    knowledge_base_list_invalidate(user=user)
    ingestion_jobs_end_deleted(jobs=IngestionJob.objects.filter(knowledge_base_id=kb.knowledge_base_id))
    audit_log_record(user=user, action="kb.delete", resource_type="knowledge_base", resource_id=kb.knowledge_base_id,
                     details={"trash": True})


def _trashed_kb(*, user: User, knowledge_base_id: str, trashed_with: str | None = None) -> KnowledgeBase:
    kb = KnowledgeBase.objects(knowledge_base_id=knowledge_base_id, username=user.username, is_delete=True,
                               trashed_with=trashed_with).first()
    if kb is None or (kb.is_temp and trashed_with is None):
        raise NotFound("Knowledge base not found in the trash.")
    return kb


def _kb_restore(*, user: User, kb: KnowledgeBase) -> None:
    File.objects(knowledge_db_id=kb.knowledge_base_id, is_delete=True, trashed_with=_kb_mark(kb.knowledge_base_id)
                 ).update(set__is_delete=False, set__deleted_at=None, set__trashed_with=None)
    kb_version_bump(knowledge_base_id=kb.knowledge_base_id, is_delete=False, deleted_at=None, trashed_with=None)
    knowledge_base_list_invalidate(user=user)
    audit_log_record(user=user, action="kb.restore", resource_type="knowledge_base", resource_id=kb.knowledge_base_id)


def knowledge_base_restore(*, user: User, knowledge_base_id: str) -> KnowledgeBase:
    """Bring a KB back from the trash with the files that went there with it."""
    kb = _trashed_kb(user=user, knowledge_base_id=knowledge_base_id)
    _kb_restore(user=user, kb=kb)
    kb.reload()
    return kb


def knowledge_bases_restore_with(*, user: User, trashed_with: str) -> int:
    """Bring back the KBs that went to the trash with something else (a conversation's temporary KBs)."""
    kbs = list(KnowledgeBase.objects(username=user.username, is_delete=True, trashed_with=trashed_with))
    for kb in kbs:
        _kb_restore(user=user, kb=kb)
    return len(kbs)


def knowledge_base_purge_trashed(*, user: User, knowledge_base_id: str) -> None:
    """Purge a KB in the user's trash now: vectors, objects, page images, file records and jobs."""
    kb = _trashed_kb(user=user, knowledge_base_id=knowledge_base_id)
    knowledge_base_purge(knowledge_base_id=kb.knowledge_base_id)
    audit_log_record(user=user, action="kb.purge", resource_type="knowledge_base", resource_id=kb.knowledge_base_id)


def knowledge_base_purge_any(*, knowledge_base_id: str) -> None:
    """Purge a KB whether in the trash or not (what owns it is being purged: a conversation's temporary KB)."""
    KnowledgeBase.objects(knowledge_base_id=knowledge_base_id).update_one(set__is_delete=True)
    knowledge_base_purge(knowledge_base_id=knowledge_base_id)


def knowledge_bases_purge_with(*, trashed_with: str) -> int:
    """Purge the KBs that went to the trash with something else (its own purge), any owner."""
    ids = list(KnowledgeBase.objects(is_delete=True, trashed_with=trashed_with).scalar("knowledge_base_id"))
    for knowledge_base_id in ids:
        knowledge_base_purge(knowledge_base_id=knowledge_base_id)
    return len(ids)


# --- files ---------------------------------------------------------------------------------------------


def file_trash(*, user: User, file_id: str, ip: str | None = None) -> File:
    """Move a file to the trash: hidden from search at once (the KB's hidden list), its job cancelled."""
    file = file_get(user=user, file_id=file_id)
    file_to_trash(file=file)
    ingestion_jobs_end_deleted(jobs=IngestionJob.objects.filter(file_id=file.file_id))
    audit_log_record(user=user, action="file.delete", resource_type="file", resource_id=file.file_id,
                     details={"knowledge_base_id": file.knowledge_db_id, "filename": file.filename, "trash": True},
                     ip=ip)
    return file


def _trashed_file(*, user: User, file_id: str) -> File:
    file = File.objects(file_id=file_id, username=user.username, is_delete=True, trashed_with=None).first()
    if file is None or not KnowledgeBase.objects(knowledge_base_id=file.knowledge_db_id).count():
        raise NotFound("File not found in the trash.")
    return file


def file_restore(*, user: User, file_id: str) -> File:
    """Bring a file back from the trash. A completed version becomes its document's current one: the version
    current until now goes to the trash (replaced_by this one) in the same step (knowledge.versions)."""
    file = _trashed_file(user=user, file_id=file_id)
    if not KnowledgeBase.objects(knowledge_base_id=file.knowledge_db_id, is_delete=False).count():
        raise Conflict("The file's knowledge base is in the trash: restore the knowledge base first.",
                       details={"knowledge_base_id": file.knowledge_db_id})
    if file.status == FileStatus.COMPLETED and not file.replaces:
        version_make_current(file=file)
    File.objects(file_id=file.file_id).update_one(set__is_delete=False, set__deleted_at=None,
                                                  set__replaced_by=None)
    if file.status != FileStatus.COMPLETED or file.replaces:
        kb_cache_invalidate(knowledge_base_id=file.knowledge_db_id)  # not searchable: still hidden
    audit_log_record(user=user, action="file.restore", resource_type="file", resource_id=file.file_id,
                     details={"knowledge_base_id": file.knowledge_db_id})
    file.reload()
    return file


def file_purge_trashed(*, user: User, file_id: str) -> None:
    file = _trashed_file(user=user, file_id=file_id)
    file_purge(file_id=file.file_id)
    audit_log_record(user=user, action="file.purge", resource_type="file", resource_id=file.file_id,
                     details={"knowledge_base_id": file.knowledge_db_id})


# --- the listing and the nightly purge ------------------------------------------------------------------


def trash_items(*, user: User) -> list[dict]:
    """The user's KBs and files in the trash (not those that went there with something else; not the files of a
    KB in the trash, which come back with it): {kind, id, name, deleted_at, knowledge_base_id, replaced_by}."""
    kbs = list(KnowledgeBase.objects(username=user.username, is_delete=True, is_temp__ne=True, trashed_with=None)
               .only("knowledge_base_id", "knowledge_base_name", "deleted_at", "last_modify_at"))
    items = [{"kind": "knowledge_base", "id": kb.knowledge_base_id, "name": kb.knowledge_base_name,
              "deleted_at": kb.deleted_at or kb.last_modify_at, "knowledge_base_id": None, "replaced_by": None}
             for kb in kbs]
    files = list(File.objects(username=user.username, is_delete=True, trashed_with=None)
                 .only("file_id", "filename", "knowledge_db_id", "deleted_at", "last_modify_at", "replaced_by"))
    live = set(KnowledgeBase.objects(knowledge_base_id__in=list({f.knowledge_db_id for f in files}), is_delete=False,
                                     is_temp__ne=True).scalar("knowledge_base_id")) if files else set()
    items += [{"kind": "file", "id": f.file_id, "name": f.filename, "deleted_at": f.deleted_at or f.last_modify_at,
               "knowledge_base_id": f.knowledge_db_id, "replaced_by": f.replaced_by}
              for f in files if f.knowledge_db_id in live]
    return items


def _expired(cutoff: datetime) -> dict:
    """Trashed at or before the cutoff (records trashed before `deleted_at` existed: last changed before it)."""
    from mongoengine.queryset.visitor import Q

    return {"__raw__": (Q(deleted_at__lte=cutoff) | Q(deleted_at=None, last_modify_at__lte=cutoff)).to_query(File)}


def trash_purge_expired(*, cutoff: datetime, dry_run: bool = False) -> int:
    """Purge KBs and files that went to the trash at or before `cutoff` (the nightly cleanup). A conversation's
    temporary KBs go with their conversation (chat.trash), files of a KB with their KB."""
    purged = 0
    for kb in KnowledgeBase.objects(is_delete=True, trashed_with=None, **_expired(cutoff)).only("knowledge_base_id"):
        purged += 1
        if not dry_run:
            knowledge_base_purge(knowledge_base_id=kb.knowledge_base_id)
    for file in File.objects(is_delete=True, trashed_with=None, **_expired(cutoff)).only("file_id"):
        purged += 1
        if not dry_run:
            file_purge(file_id=file.file_id)
    return purged


def knowledge_base_discard(*, knowledge_base_id: str) -> None:
    """An empty KB made by mistake (a lost race): no trash, purged on commit."""
    from knowledge.tasks import purge_knowledge_base

    kb_version_bump(knowledge_base_id=knowledge_base_id, is_delete=True, deleted_at=utcnow())
    transaction.on_commit(lambda: purge_knowledge_base.delay(knowledge_base_id))
