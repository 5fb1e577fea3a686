"""Reads for knowledge bases and files. Ownership is part of every query."""

import io
import json
from collections.abc import Iterator

from django.conf import settings
from PIL import Image

from accounts.models import User
from knowledge.documents import File, KnowledgeBase, PageImage
from knowledge.models import IngestionJob
from knowledge.progress import progress_get
from knowledge.signing import page_image_url as signed_url
from layra import cache
from layra.errors import NotFound
from layra.lru import SizedLRU
from layra.pagination import CountedQuery
from layra.process_local import ProcessLocal
from layra.sse import polling
from layra.storage import object_get


def knowledge_base_get(*, user: User, knowledge_base_id: str) -> KnowledgeBase:
    kb = KnowledgeBase.objects(knowledge_base_id=knowledge_base_id, username=user.username, is_delete=False).first()
    if kb is None:
        raise NotFound("Knowledge base not found.")
    return kb


def knowledge_bases_for_search(*, user: User, knowledge_base_ids: list[str],
                               skip_missing: bool = False) -> list[dict]:
    """Summaries (knowledge_base_to_dict) of the user's live KBs with these ids, temporary ones included, read
    from the `kb:{id}` cache where they can be: a search or a chat turn then asks Mongo only for the KBs not
    cached. Any other id is a 404, or with `skip_missing` left out (a chat model's saved KBs may have been
    deleted since)."""
    wanted = list(dict.fromkeys(i for i in knowledge_base_ids if i))
    summaries = knowledge_base_summaries(user=user, knowledge_base_ids=wanted)
    if len(summaries) != len(wanted) and not skip_missing:
        raise NotFound("Knowledge base not found.")
    return [summaries[i] for i in wanted if i in summaries]


def knowledge_base_list(*, user: User, name: str | None = None) -> list[dict]:
    """Summaries (knowledge_base_to_dict) of the user's own (non-temporary) KBs, newest first, optionally
    filtered by name (contains, any case). Read from the cache: the user's KB ids, then each KB's summary."""
    ids = _own_knowledge_base_ids(user=user)
    summaries = knowledge_base_summaries(user=user, knowledge_base_ids=ids)
    kbs = [summaries[i] for i in ids if i in summaries]
    if len(kbs) != len(ids):
        # A KB deleted by a path that does not know its owner (the admin, cleanup) is left out here; the stale
        # id list is dropped so that the next read rebuilds it instead of asking Mongo for that KB every time.
        cache.drop(own_ids_cache_key(user.username))
    if name:
        kbs = [kb for kb in kbs if name.casefold() in kb["knowledge_base_name"].casefold()]
    return kbs


def own_ids_cache_key(username: str) -> str:
    return f"kbids:{username}"


def _own_knowledge_base_ids(*, user: User) -> list[str]:
    """The ids of the user's own live KBs, newest first; cached as `kbids:{username}`, dropped by a create or a
    delete (knowledge_base_list_invalidate)."""
    value = cache.cached(own_ids_cache_key, [user.username]).get(user.username)
    if value is not None:
        return json.loads(value)
    ids = list(KnowledgeBase.objects(username=user.username, is_delete=False, is_temp__ne=True)
               .order_by("-created_at").scalar("knowledge_base_id"))
    cache.fill(own_ids_cache_key, {user.username: json.dumps(ids)}, ttl=settings.KNOWLEDGE_KB_CACHE_TTL)
    return ids


def knowledge_base_counts(*, knowledge_base_ids: list[str]) -> dict[str, tuple[int, int]]:
    """{kb_id: (file count, page count)} over live files.

    Cached per KB as `kbcounts:{id}` ("files,pages") and dropped with `kb:{id}` by every write that changes a
    KB's files (kb_cache_invalidate): listing KBs is then one Mongo query, not a query and an aggregation.
    The misses are counted in one aggregation."""
    if not knowledge_base_ids:
        return {}
    counts = {}
    for knowledge_base_id, value in cache.cached(counts_cache_key, knowledge_base_ids).items():
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
    cache.fill(counts_cache_key, {i: f"{files},{pages}" for i, (files, pages) in fresh.items()},
               ttl=settings.KNOWLEDGE_KB_CACHE_TTL)
    return counts | fresh


def counts_cache_key(knowledge_base_id: str) -> str:
    return f"kbcounts:{knowledge_base_id}"


def summary_cache_key(knowledge_base_id: str) -> str:
    return f"kb:{knowledge_base_id}"


def knowledge_base_summaries(*, user: User, knowledge_base_ids: list[str]) -> dict[str, dict]:
    """{id: KB metadata with counts} of the user's live KBs among the ids.

    Each is cached as `kb:{id}` (KNOWLEDGE_KB_CACHE_TTL), dropped by every write that changes the KB, its
    version or its files (kb_cache_invalidate); ownership is checked on every read. The misses are one query."""
    summaries = {i: json.loads(value) for i, value in cache.cached(summary_cache_key, knowledge_base_ids).items()}
    missing = [i for i in knowledge_base_ids if i not in summaries]
    if missing:
        kbs = list(KnowledgeBase.objects(knowledge_base_id__in=missing, username=user.username, is_delete=False))
        counts = knowledge_base_counts(knowledge_base_ids=[kb.knowledge_base_id for kb in kbs])
        fresh = {}
        for kb in kbs:
            files, pages = counts.get(kb.knowledge_base_id, (0, 0))
            fresh[kb.knowledge_base_id] = knowledge_base_to_dict(kb, files=files, pages=pages)
        cache.fill(summary_cache_key, {i: json.dumps(data) for i, data in fresh.items()},
                   ttl=settings.KNOWLEDGE_KB_CACHE_TTL)
        summaries.update(fresh)
    return {i: data for i, data in summaries.items() if data.get("username") == user.username}


def knowledge_base_detail(*, user: User, knowledge_base_id: str) -> dict:
    """KB metadata with counts (cached, see knowledge_base_summaries); another user's KB is a 404."""
    summary = knowledge_base_summaries(user=user, knowledge_base_ids=[knowledge_base_id]).get(knowledge_base_id)
    if summary is None:
        raise NotFound("Knowledge base not found.")
    return summary


def knowledge_base_to_dict(kb: KnowledgeBase, *, files: int, pages: int) -> dict:
    return {"knowledge_base_id": kb.knowledge_base_id, "knowledge_base_name": kb.knowledge_base_name,
            "username": kb.username, "is_temp": kb.is_temp, "version": kb.version, "embedder": kb.embedder,
            "file_count": files, "page_count": pages, "created_at": kb.created_at.isoformat(),
            "last_modify_at": kb.last_modify_at.isoformat(), "hidden_file_ids": list(kb.hidden_file_ids or [])}


def file_list(*, user: User, knowledge_base_id: str) -> CountedQuery:
    """The KB's live files, newest first, without their pages, for PagePagination: a page is one query (skip and
    limit on the (knowledge_db_id, is_delete, -created_at) index), and the count is the KB's cached file count,
    the figure its summary shows, so a KB of thousands of files lists its first page without reading them all."""
    summary = knowledge_base_detail(user=user, knowledge_base_id=knowledge_base_id)  # 404 unless the user's
    files = (File.objects(knowledge_db_id=knowledge_base_id, username=user.username, is_delete=False)
             .exclude("images").order_by("-created_at"))
    return CountedQuery(files, summary["file_count"])


def file_get(*, user: User, file_id: str) -> File:
    file = File.objects(file_id=file_id, username=user.username, is_delete=False).first()
    if file is None or not KnowledgeBase.objects(knowledge_base_id=file.knowledge_db_id, is_delete=False).count():
        raise NotFound("File not found.")
    return file


def file_content(*, user: User, file_id: str) -> tuple[File, bytes]:
    file = file_get(user=user, file_id=file_id)
    return file, object_get(key=file.minio_filename)


def file_page(*, user: User, file_id: str, page_number: int) -> tuple[File, PageImage]:
    file = file_get(user=user, file_id=file_id)
    for page in file.images:
        if page.page_number == page_number:
            return file, page
    raise NotFound("Page not found.")


def pages_get(*, user: User, image_ids: list[str],
              in_trash_too: bool = False) -> dict[str, tuple[File, PageImage]]:
    """{image_id: (file, page)} for the user's live pages among `image_ids`, in one query; others are left out.
    `in_trash_too`: pages of files in the trash as well (a search's hits, whose files were visible when the search
    read its KBs: a file that goes to the trash meanwhile leaves the next search, not this one's page list).

    Mongo sends back only those pages of each file (a $filter), not its whole images[] with every page's text
    layer: a chat turn citing page 3 of a 500-page manual reads one page, not 500. The files are for reading:
    their `images` hold the asked-for pages only."""
    wanted = list(dict.fromkeys(image_ids))
    if not wanted:
        return {}
    only_wanted = {"$filter": {"input": "$images", "as": "page", "cond": {"$in": ["$$page.images_id", wanted]}}}
    live = {} if in_trash_too else {"is_delete": False}
    rows = File.objects(images__images_id__in=wanted, username=user.username, **live).aggregate([
        {"$project": {"file_id": 1, "knowledge_db_id": 1, "username": 1, "filename": 1, "minio_filename": 1,
                      "content_type": 1, "kind": 1, "page_count": 1, "is_delete": 1, "images": only_wanted}},
    ])
    found = {}
    for row in rows:
        file = File._from_son(row)
        for page in file.images:
            found[page.images_id] = (file, page)
    return found


def page_image_data(page: PageImage) -> bytes:
    """The stored image of a page already read with its owner checked (pages_get, file_page).

    Served from a per-process LRU when it can be: a chat turn sends its cited pages (and those of the last turns)
    to the model, the same few pages again and again. The key holds the page's size, so a page rendered again
    at another resolution (reindex) is read afresh; the original file under a file id never changes.
    """
    cache = page_image_cache()
    key = (page.minio_filename, page.width, page.height)
    data = cache.get(key)
    if data is None:
        data = object_get(key=page.minio_filename)
        cache.put(key, data)
    return data


page_image_cache = ProcessLocal(
    lambda: SizedLRU(max_bytes=settings.PAGE_IMAGE_CACHE_MB * 1024 * 1024, size=len)).get


def page_image_url(*, user: User, file_id: str, page_number: int, size: str = "full") -> str:
    """A same-origin URL of the page image, signed for this user, valid PAGE_IMAGE_URL_TTL_S seconds."""
    return signed_url(user=user, file_id=file_id, page_number=page_number, size=size)


def page_thumbnail_data(page: PageImage) -> bytes:
    """The page image scaled to PAGE_THUMBNAIL_PX on its long side (JPEG), cached like the full image."""
    cache = page_image_cache()
    key = ("thumb", page.minio_filename, page.width, page.height)
    data = cache.get(key)
    if data is None:
        image = Image.open(io.BytesIO(page_image_data(page)))
        image.thumbnail((settings.PAGE_THUMBNAIL_PX, settings.PAGE_THUMBNAIL_PX))
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=80)
        data = out.getvalue()
        cache.put(key, data)
    return data


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
            "filename": job.filename, "batch_id": job.batch_id or None, "state": job.state,
            "pages_total": job.pages_total, "pages_done": job.pages_done,
            "attempts": job.attempts, "error": job.error,
            "processed": live.get("processed", 0), "total": live.get("total", 0),
            "message": live.get("message", ""), "eta_seconds": live.get("eta_seconds"),
            "created_at": job.created_at, "finished_at": job.finished_at}


def ingestion_job_events(*, user: User, task_id: str) -> Iterator[tuple[str, dict]]:
    """(event, data) pairs: progress whenever it changes, then one `end` when the job is over."""
    job = ingestion_job_get(user=user, task_id=task_id)
    last = None
    for _ in polling(interval=settings.KNOWLEDGE_SSE_POLL_SECONDS, max_seconds=settings.KNOWLEDGE_SSE_MAX_SECONDS):
        job.refresh_from_db()
        data = ingestion_job_to_dict(job)
        snapshot = (data["state"], data["processed"], data["total"], data["message"])
        if snapshot != last:
            last = snapshot
            yield "progress", data
        if job.is_terminal:
            yield "end", data
            return
    yield "timeout", data
