"""Repairs and garbage collection across the stores. Every step reports what it found; dry_run changes nothing."""

import logging
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.db import transaction

from chat.documents import Conversation
from embeddings.lexical import lexical_index
from embeddings.services import file_index_delete, knowledge_base_index_delete
from knowledge.documents import File, KnowledgeBase
from knowledge.jobs import job_fail, job_requeue
from knowledge.models import IngestionJob
from knowledge.outputs import file_outputs_remove
from knowledge.purge import knowledge_base_purge
from knowledge.services import kb_version_bump
from layra.redis import redis_client
from layra.storage import object_keys, objects_delete, storage
from operations.consistency import expected_keys, knowledge_base_check
from operations.reindex import reindex_file
from operations.stores import collection_rows, kb_collections
from operations.trash import conversations_retention, trash_purge_expired

logger = logging.getLogger(__name__)
STEPS = ("orphan_vectors", "missing_vectors", "orphan_objects", "missing_objects", "trash",
         "conversation_retention", "temp_knowledge_bases", "progress_keys")
STEP_ALIASES = {"soft_deleted": "trash"}  # the trash step's older name


def orphan_vectors(*, dry_run: bool) -> int:
    """Vector and text rows whose file record is gone or failed/cancelled, or whose KB record is gone (every
    index). Files and KBs in the trash keep their rows (a restore brings them back whole), and so do files still
    being ingested."""
    by_kb: dict[str, dict[str, int]] = {}  # kb id → {file id: rows}
    for name in kb_collections():
        for row in collection_rows(name, fields=["knowledge_base_id", "file_id"]):
            files = by_kb.setdefault(row["knowledge_base_id"], {})
            files[row["file_id"]] = files.get(row["file_id"], 0) + 1
    lexical = lexical_index()
    for kb in KnowledgeBase.objects().only("knowledge_base_id"):
        for _image_id, file_id in lexical.page_ids(knowledge_base_id=kb.knowledge_base_id).items():
            files = by_kb.setdefault(kb.knowledge_base_id, {})
            files[file_id] = files.get(file_id, 0) + 1
    removed = 0
    for kb_id, files in by_kb.items():
        if KnowledgeBase.objects(knowledge_base_id=kb_id).first() is None:
            removed += sum(files.values())
            if not dry_run:
                knowledge_base_index_delete(knowledge_base_id=kb_id)
            continue
        live = {f.file_id for f in File.objects(knowledge_db_id=kb_id, status__nin=["failed", "cancelled"])
                .only("file_id")}
        dead = set(files) - live
        removed += sum(files[f] for f in dead)
        if dead and not dry_run:
            for file_id in dead:
                file_index_delete(knowledge_base_id=kb_id, file_id=file_id)
            kb_version_bump(knowledge_base_id=kb_id)
    return removed


def missing_vectors(*, dry_run: bool) -> int:
    """Completed files with a page that has no vectors are re-embedded."""
    repaired = 0
    for kb in KnowledgeBase.objects(is_delete=False):
        report = knowledge_base_check(knowledge_base_id=kb.knowledge_base_id)
        missing = set(report.pages_without_vectors)
        if not missing:
            continue
        for file in File.objects(knowledge_db_id=kb.knowledge_base_id, is_delete=False, status="completed"):
            if missing & {p.images_id for p in file.images}:
                repaired += 1
                if not dry_run:
                    reindex_file(file_id=file.file_id)
    return repaired


def _file_id_of_key(key: str) -> str | None:
    parts = key.split("/")
    return parts[2] if len(parts) >= 4 else None


def orphan_objects(*, dry_run: bool) -> int:
    """Objects no live record names (under a file prefix of a missing file, or not named by its file)."""
    files: dict[str, File | None] = {}
    orphans = []
    for key in object_keys():
        file_id = _file_id_of_key(key)
        if file_id is None:
            orphans.append(key)
            continue
        if file_id not in files:
            files[file_id] = File.objects(file_id=file_id).first()
        file = files[file_id]
        if file is None or (not file.is_delete and key not in expected_keys(file)):
            orphans.append(key)  # a deleted file's objects are the purge's (soft_deleted step)
    if orphans and not dry_run:
        objects_delete(keys=orphans)
    return len(orphans)


def missing_objects(*, dry_run: bool) -> int:
    """Records whose objects are gone: re-ingest from the original when it exists, else fail the file."""
    repaired = 0
    for file in File.objects(is_delete=False, status__in=["completed", "failed"]):
        missing = [k for k in expected_keys(file) if not storage().exists(k)]
        if not missing:
            continue
        repaired += 1
        if dry_run:
            continue
        job = IngestionJob.objects.filter(file_id=file.file_id).order_by("-created_at").first()
        if job is None:
            user = get_user_model().objects.filter(username=file.username).first()
            if user is None:
                continue
            job = IngestionJob.objects.create(user=user, knowledge_base_id=file.knowledge_db_id,
                                              file_id=file.file_id, filename=file.filename)
        if file.minio_filename in missing:
            job_fail(job=job, reason="The stored original is missing.")
        else:
            file_outputs_remove(file)
            File.objects(file_id=file.file_id).update_one(set__images=[], set__page_count=0)
            job_requeue(job=job, reason="Re-ingesting: page images were missing.")
        kb_version_bump(knowledge_base_id=file.knowledge_db_id)
    return repaired


def trash(*, dry_run: bool, older_than_days: int | None) -> int:
    """Items that went to the trash more than TRASH_RETENTION_DAYS ago (or `older_than_days`) are purged."""
    return trash_purge_expired(older_than_days=older_than_days, dry_run=dry_run)


def conversation_retention(*, dry_run: bool) -> int:
    """Conversations idle for CONVERSATION_RETENTION_DAYS are purged (unset: none)."""
    return conversations_retention(dry_run=dry_run)


def temp_knowledge_bases(*, dry_run: bool) -> int:
    """Temporary KBs whose conversation no longer exists are deleted and purged."""
    live = set(Conversation.objects.distinct("conversation_id"))
    removed = 0
    for kb in KnowledgeBase.objects(is_temp=True):
        if kb.conversation_id in live:
            continue
        removed += 1
        if not dry_run:
            kb_version_bump(knowledge_base_id=kb.knowledge_base_id, is_delete=True)
            File.objects(knowledge_db_id=kb.knowledge_base_id).update(set__is_delete=True)
            knowledge_base_purge(knowledge_base_id=kb.knowledge_base_id)
    return removed


def progress_keys(*, dry_run: bool) -> int:
    """Progress hashes (task:*) with no expiry or whose job is gone or finished; found by SCAN, never KEYS."""
    client = redis_client("task")
    removed = 0
    batch: list[str] = []
    for key in client.scan_iter(match="task:*", count=500):
        task_id = key.split(":", 1)[1]
        job = IngestionJob.objects.filter(task_id=task_id).only("state").first()
        stale = job is None or client.ttl(key) == -1 and job.is_terminal
        if stale:
            removed += 1
            batch.append(key)
    if batch and not dry_run:
        for start in range(0, len(batch), 500):
            client.delete(*batch[start:start + 500])
    return removed


def cleanup_run(*, dry_run: bool = False, older_than_days: int | None = None, steps: tuple[str, ...] = STEPS,
                on_step: Callable[[str], None] | None = None) -> dict[str, int]:
    """Run the named steps in order; returns {step: items found (and repaired unless dry_run)}."""
    steps = tuple(STEP_ALIASES.get(step, step) for step in steps)
    results: dict[str, int] = {}
    for step in STEPS:
        if step not in steps:
            continue
        func = globals()[step]
        kwargs = {"dry_run": dry_run}
        if step == "trash":
            kwargs["older_than_days"] = older_than_days
        with transaction.atomic():
            results[step] = func(**kwargs)
        if on_step:
            on_step(step)

    return results
