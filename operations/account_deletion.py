"""The account-deletion cascade: everything of one user, from every store, then the user row.

accounts deactivates the user and records an AccountDeletion (accounts.deletion); this runs it in the background
(task `operations.account_delete`). It reads the owner's records directly, whatever their trash or deleted flags
(no "visible" selector), and removes, in order: each knowledge base with its files, vectors (every dense
collection and the lexical index), objects, page images and ingestion jobs; any vector row or object the records
no longer name; every Mongo document the user owns (conversations, workflows, runs, chatflows, model config,
custom nodes: every collection, by `username`); the Redis keys that name the user or their KBs, files, jobs and
runs; the Django sessions; then the user row (its sessions, refresh tokens, API keys and jobs go with it). The
audit log keeps its entries, stripped of the user's name, address and details.

Safe to run twice: every step deletes by owner or id, a completed deletion is not run again, and a failed one
is run again from the start.
"""

import logging

from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import AccountDeletion, AuditLog, User
from accounts.services import audit_log_record
from chat.selectors import model_config_cache_key
from embeddings.services import user_index_delete
from knowledge.documents import File, KnowledgeBase
from knowledge.models import IngestionJob
from knowledge.purge import file_purge, knowledge_base_purge
from knowledge.selectors import counts_cache_key, own_ids_cache_key, summary_cache_key
from layra.mongo import database
from layra.redis import redis_client, scan_delete
from workflows.documents import WorkflowRun
from workflows.events import events_key

logger = logging.getLogger(__name__)
State = AccountDeletion.State


def account_delete_run(*, deletion_id: int) -> AccountDeletion | None:
    """Run one recorded deletion to its end (or failure, kept with its error for the operator to retry)."""
    deletion = AccountDeletion.objects.filter(pk=deletion_id).first()
    if deletion is None or deletion.state == State.COMPLETED:
        return deletion
    AccountDeletion.objects.filter(pk=deletion.pk).update(state=State.RUNNING, started_at=timezone.now(),
                                                          attempts=deletion.attempts + 1, error="")
    try:
        counts = account_data_delete(user_pk=deletion.user_ref, username=deletion.username)
    except Exception as exc:
        logger.exception("account deletion %s failed", deletion.deletion_id)
        AccountDeletion.objects.filter(pk=deletion.pk).update(
            state=State.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now())
        raise
    AccountDeletion.objects.filter(pk=deletion.pk).update(state=State.COMPLETED, counts=counts, username="",
                                                          finished_at=timezone.now())
    audit_log_record(user=None, action="account.delete", resource_type="user", resource_id=str(deletion.user_ref),
                     details={"deletion_id": deletion.deletion_id, "requested_by": deletion.requested_by})
    deletion.refresh_from_db()
    return deletion


def account_data_delete(*, user_pk: int, username: str) -> dict:
    """Remove everything of this user from every store; {store/kind: count removed}."""
    if not username:
        raise ValueError("The deletion has no username to find the user's data by.")
    user = User.objects.filter(pk=user_pk).first()
    if user is not None:
        if user.username != username:
            raise ValueError("The deletion's username is not the user's.")
        User.objects.filter(pk=user_pk).update(is_active=False)  # in case it was turned back on meanwhile
    counts: dict[str, int] = {}
    job_ids = list(IngestionJob.objects.filter(Q(user_id=user_pk) | Q(file_id__in=_file_ids(username)))
                   .values_list("task_id", flat=True))
    kb_ids = _knowledge_bases_purge(username=username, counts=counts)
    _files_purge(username=username, counts=counts)
    user_index_delete(username=username)  # rows the KB and file records no longer name
    run_ids = list(WorkflowRun.objects(username=username).scalar("run_id"))
    counts["mongo_documents"] = _mongo_documents_delete(username=username)
    counts["redis_keys"] = _redis_keys_delete(user_pk=user_pk, username=username, kb_ids=kb_ids,
                                              task_ids=job_ids, run_ids=run_ids)
    counts["sessions"] = _django_sessions_delete(user_pk=user_pk)
    with transaction.atomic():
        counts["audit_entries_anonymised"] = _audit_anonymise(user_pk=user_pk, username=username)
        counts["ingestion_jobs"] = IngestionJob.objects.filter(user_id=user_pk).delete()[0]
        counts["user_rows"] = User.objects.filter(pk=user_pk).delete()[0]  # sessions, tokens, API keys with it
    return counts


def _file_ids(username: str) -> list[str]:
    return list(File.objects(username=username).scalar("file_id"))


def _knowledge_bases_purge(*, username: str, counts: dict) -> list[str]:
    """Every KB of the user (live, trashed, temporary) purged whole: index rows, objects, files, jobs."""
    kb_ids = list(KnowledgeBase.objects(username=username).scalar("knowledge_base_id"))
    kb_ids += [i for i in File.objects(username=username).distinct("knowledge_db_id") if i not in kb_ids]
    for kb_id in kb_ids:
        kb = KnowledgeBase.objects(knowledge_base_id=kb_id).first()
        if kb is None or kb.username != username:
            continue  # a file of the user's in a KB that is not theirs (or gone): purged by file below
        KnowledgeBase.objects(knowledge_base_id=kb_id).update_one(set__is_delete=True)
        File.objects(knowledge_db_id=kb_id).update(set__is_delete=True)
        knowledge_base_purge(knowledge_base_id=kb_id)
    counts["knowledge_bases"] = len(kb_ids)
    return kb_ids


def _files_purge(*, username: str, counts: dict) -> None:
    file_ids = _file_ids(username)
    for file_id in file_ids:
        File.objects(file_id=file_id).update_one(set__is_delete=True)
        file_purge(file_id=file_id)
    counts["stray_files"] = len(file_ids)


def _mongo_documents_delete(*, username: str) -> int:
    """Every document owned by the user, in every collection (a collection added later included)."""
    db = database()
    return sum(db[name].delete_many({"username": username}).deleted_count for name in db.list_collection_names()
               if not name.startswith("system."))


def _redis_keys_delete(*, user_pk: int, username: str, kb_ids: list[str], task_ids: list[str],
                       run_ids: list[str]) -> int:
    """The keys that name the user or their KBs, jobs and runs (caches, progress, run events, rate limits)."""
    cache = redis_client("cache")
    keys = [own_ids_cache_key(username), model_config_cache_key(username)]
    keys += [key for kb_id in kb_ids for key in (summary_cache_key(kb_id), counts_cache_key(kb_id))]
    removed = cache.delete(*keys)
    for kb_id in kb_ids:
        removed += scan_delete("cache", f"vecgen:*:{kb_id}") + scan_delete("cache", f"pagevec:*:{kb_id}:*")
    removed += _search_cache_delete(kb_ids)
    task = redis_client("task")
    task_keys = [f"task:{t}" for t in task_ids] + [events_key(r) for r in run_ids]
    for start in range(0, len(task_keys), 500):
        removed += task.delete(*task_keys[start:start + 500])
    removed += scan_delete("ratelimit", f"ratelimit:user:{user_pk}:*")
    return removed


def _search_cache_delete(kb_ids: list[str]) -> int:
    """Cached search answers over any of these KBs (keys are digests: the values name the KBs)."""
    if not kb_ids:
        return 0
    cache = redis_client("cache")
    wanted = [f'"knowledge_base_id": "{kb_id}"' for kb_id in kb_ids]
    stale = [key for key in cache.scan_iter(match="search:*", count=500)
             if any(marker in (cache.get(key) or "") for marker in wanted)]
    return cache.delete(*stale) if stale else 0


def _django_sessions_delete(*, user_pk: int) -> int:
    """The admin's browser sessions of the user (they already stopped working: the user is inactive)."""
    stale = [s.pk for s in Session.objects.all() if str(s.get_decoded().get("_auth_user_id")) == str(user_pk)]
    return Session.objects.filter(pk__in=stale).delete()[0] if stale else 0


def _audit_anonymise(*, user_pk: int, username: str) -> int:
    """The audit log keeps what happened and when, not who or with what: the user's own entries lose their name,
    address and details; entries of others about the user (an operator's action) keep their actor and lose the
    name and details."""
    own = AuditLog.objects.filter(Q(user_id=user_pk) | Q(username=username))
    about = AuditLog.objects.filter(Q(resource_id=username) | Q(details__owner=username)
                                    | Q(details__username=username))
    changed = about.filter(resource_id=username).update(resource_id="")
    changed += own.update(user=None, username="", ip=None, details={})
    changed += AuditLog.objects.filter(Q(details__owner=username) | Q(details__username=username)).update(details={})
    return changed
