"""Reads for knowledge bases and files. Ownership is part of every query."""

import json
import time
from collections.abc import Iterator

from django.conf import settings

from accounts.models import User
from knowledge.documents import File, KnowledgeBase, PageImage
from knowledge.models import IngestionJob
from knowledge.progress import progress_get
from layra.errors import NotFound
from layra.lru import SizedLRU
from layra.process_local import ProcessLocal
from layra.redis import redis_client


def knowledge_base_get(*, user: User, knowledge_base_id: str) -> KnowledgeBase:
    kb = KnowledgeBase.objects(knowledge_base_id=knowledge_base_id, username=user.username, is_delete=False).first()
    if kb is None:
        raise NotFound("Knowledge base not found.")
    return kb


def knowledge_bases_for_search(*, user: User, knowledge_base_ids: list[str],
                               skip_missing: bool = False) -> list[KnowledgeBase]:
    """The user's live KBs with these ids (temporary ones included), in one query. Any other id is a 404, or
    with `skip_missing` left out (a chat model's saved KBs may have been deleted since)."""
    wanted = list(dict.fromkeys(i for i in knowledge_base_ids if i))
    kbs = list(KnowledgeBase.objects(knowledge_base_id__in=wanted, username=user.username, is_delete=False))
    if len(kbs) != len(wanted) and not skip_missing:
        raise NotFound("Knowledge base not found.")
    return kbs


def knowledge_base_list(*, user: User, name: str | None = None) -> list[KnowledgeBase]:
    """The user's own (non-temporary) KBs, newest first, optionally filtered by name."""
    query = KnowledgeBase.objects(username=user.username, is_delete=False, is_temp__ne=True)
    if name:
        query = query.filter(knowledge_base_name__icontains=name)
    return list(query.order_by("-created_at"))


def knowledge_base_counts(*, knowledge_base_ids: list[str]) -> dict[str, tuple[int, int]]:
    """{kb_id: (file count, page count)} over live files.

    Cached per KB as `kbcounts:{id}` ("files,pages") and dropped with `kb:{id}` by every write that changes a
    KB's files (kb_cache_invalidate): listing KBs is then one Mongo query, not a query and an aggregation.
    The misses are counted in one aggregation."""
    if not knowledge_base_ids:
        return {}
    keys = [counts_cache_key(i) for i in knowledge_base_ids]
    try:
        cached = redis_client("cache").mget(keys)
    except Exception:  # noqa: BLE001 - a cache outage falls back to Mongo
        cached = [None] * len(keys)
    counts = {}
    for knowledge_base_id, value in zip(knowledge_base_ids, cached, strict=True):
        if value:
            files, pages = value.split(",")
            counts[knowledge_base_id] = (int(files), int(pages))
    missing = [i for i in knowledge_base_ids if i not in counts]
    if not missing:
        return counts
    rows = File.objects(knowledge_db_id__in=missing, is_delete=False).aggregate([
        {"$group": {"_id": "$knowledge_db_id", "files": {"$sum": 1}, "pages": {"$sum": "$page_count"}}},
    ])
    fresh = dict.fromkeys(missing, (0, 0))
    fresh.update({row["_id"]: (int(row["files"]), int(row["pages"] or 0)) for row in rows})
    try:
        pipe = redis_client("cache").pipeline(transaction=False)
        for knowledge_base_id, (files, pages) in fresh.items():
            pipe.set(counts_cache_key(knowledge_base_id), f"{files},{pages}", ex=settings.KNOWLEDGE_KB_CACHE_TTL)
        pipe.execute()
    except Exception:  # noqa: BLE001
        pass
    return counts | fresh


def counts_cache_key(knowledge_base_id: str) -> str:
    return f"kbcounts:{knowledge_base_id}"


def knowledge_base_detail(*, user: User, knowledge_base_id: str) -> dict:
    """KB metadata with counts, cached as `kb:{id}` (30 min); ownership checked on every read."""
    key = f"kb:{knowledge_base_id}"
    try:
        cached = redis_client("cache").get(key)
    except Exception:  # noqa: BLE001 - a cache outage falls back to Mongo
        cached = None
    if cached:
        data = json.loads(cached)
        if data.get("username") == user.username:
            return data
        raise NotFound("Knowledge base not found.")
    kb = knowledge_base_get(user=user, knowledge_base_id=knowledge_base_id)
    files, pages = knowledge_base_counts(knowledge_base_ids=[kb.knowledge_base_id]).get(kb.knowledge_base_id, (0, 0))
    data = knowledge_base_to_dict(kb, files=files, pages=pages)
    try:
        redis_client("cache").set(key, json.dumps(data), ex=settings.KNOWLEDGE_KB_CACHE_TTL)
    except Exception:  # noqa: BLE001
        pass
    return data


def knowledge_base_to_dict(kb: KnowledgeBase, *, files: int, pages: int) -> dict:
    return {"knowledge_base_id": kb.knowledge_base_id, "knowledge_base_name": kb.knowledge_base_name,
            "username": kb.username, "is_temp": kb.is_temp, "version": kb.version, "embedder": kb.embedder,
            "file_count": files, "page_count": pages, "created_at": kb.created_at.isoformat(),
            "last_modify_at": kb.last_modify_at.isoformat()}


def file_list(*, user: User, knowledge_base_id: str) -> list[File]:
    knowledge_base_detail(user=user, knowledge_base_id=knowledge_base_id)  # 404 unless the user's; cached
    return list(File.objects(knowledge_db_id=knowledge_base_id, username=user.username, is_delete=False)
                .exclude("images").order_by("-created_at"))


def file_get(*, user: User, file_id: str) -> File:
    file = File.objects(file_id=file_id, username=user.username, is_delete=False).first()
    if file is None or not KnowledgeBase.objects(knowledge_base_id=file.knowledge_db_id, is_delete=False).count():
        raise NotFound("File not found.")
    return file


def file_content(*, user: User, file_id: str) -> tuple[File, bytes]:
    from knowledge.pipeline import object_get

    file = file_get(user=user, file_id=file_id)
    return file, object_get(file.minio_filename)


def file_page(*, user: User, file_id: str, page_number: int) -> tuple[File, PageImage]:
    file = file_get(user=user, file_id=file_id)
    for page in file.images:
        if page.page_number == page_number:
            return file, page
    raise NotFound("Page not found.")


def pages_get(*, user: User, image_ids: list[str]) -> dict[str, tuple[File, PageImage]]:
    """{image_id: (file, page)} for the user's live pages among `image_ids`, in one query; others are left out."""
    wanted = set(image_ids)
    if not wanted:
        return {}
    found = {}
    for file in File.objects(images__images_id__in=list(wanted), username=user.username, is_delete=False):
        for page in file.images:
            if page.images_id in wanted:
                found[page.images_id] = (file, page)
    return found


def page_image_data(page: PageImage) -> bytes:
    """The stored image of a page already read with its owner checked (pages_get, file_page).

    Served from a per-process LRU when it can be: a chat turn sends its cited pages (and those of the last turns)
    to the model, the same few pages again and again. The key holds the page's size, so a page rendered again
    at another resolution (reindex) is read afresh; the original file under a file id never changes.
    """
    from knowledge.pipeline import object_get

    cache = page_image_cache()
    key = (page.minio_filename, page.width, page.height)
    data = cache.get(key)
    if data is None:
        data = object_get(page.minio_filename)
        cache.put(key, data)
    return data


page_image_cache = ProcessLocal(
    lambda: SizedLRU(max_bytes=settings.PAGE_IMAGE_CACHE_MB * 1024 * 1024, size=len)).get


def page_image_url(*, image_id: str, file_id: str, page_number: int) -> str:
    return f"/api/v1/files/{file_id}/pages/{page_number}/image"


def ingestion_job_get(*, user: User, task_id: str) -> IngestionJob:
    job = IngestionJob.objects.filter(task_id=task_id, user=user).first()
    if job is None:
        raise NotFound("Task not found.")
    return job


def ingestion_job_status(*, user: User, task_id: str) -> dict:
    job = ingestion_job_get(user=user, task_id=task_id)
    return ingestion_job_to_dict(job)


def ingestion_job_to_dict(job: IngestionJob) -> dict:
    live = progress_get(task_id=job.task_id)
    return {"task_id": job.task_id, "file_id": job.file_id, "knowledge_base_id": job.knowledge_base_id,
            "state": job.state, "pages_total": job.pages_total, "pages_done": job.pages_done,
            "attempts": job.attempts, "error": job.error,
            "processed": live.get("processed", 0), "total": live.get("total", 0),
            "message": live.get("message", ""), "eta_seconds": live.get("eta_seconds"),
            "created_at": job.created_at, "finished_at": job.finished_at}


def ingestion_job_events(*, user: User, task_id: str) -> Iterator[tuple[str, dict]]:
    """(event, data) pairs: progress whenever it changes, then one `end` when the job is over."""
    job = ingestion_job_get(user=user, task_id=task_id)
    deadline = time.monotonic() + settings.KNOWLEDGE_SSE_MAX_SECONDS
    last = None
    while True:
        job.refresh_from_db()
        data = ingestion_job_to_dict(job)
        snapshot = (data["state"], data["processed"], data["total"], data["message"])
        if snapshot != last:
            last = snapshot
            yield "progress", data
        if job.is_terminal:
            yield "end", data
            return
        if time.monotonic() > deadline:
            yield "timeout", data
            return
        time.sleep(settings.KNOWLEDGE_SSE_POLL_SECONDS)
