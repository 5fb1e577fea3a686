"""The ingestion steps as plain functions: convert -> render -> store page images -> embed -> index.

Every step is safe to run twice: page image keys and ids are deterministic per file and page, and the
file's vectors are replaced, never appended. A failed or cancelled file keeps no page images or vectors
(knowledge.job_finish).
"""

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from django.conf import settings
from django.utils import timezone

from embeddings.embedders import get_embedder
from embeddings.services import texts_replace_file, vectors_replace_file
from knowledge import progress
from knowledge.documents import File, FileStatus, KnowledgeBase, PageImage
from knowledge.invalidation import kb_version_bump
from knowledge.job_finish import CANCELLED_REASON, ingestion_job_finish
from knowledge.keys import page_image_id, page_key
from knowledge.models import IngestionJob
from knowledge.outputs import page_images
from knowledge.rendering import IngestError, encode_page, source_pages
from knowledge.versions import version_complete
from layra.errors import DomainError
from layra.locks import HeldLock, held
from layra.redis import redis_client
from layra.storage import object_get, object_put

logger = logging.getLogger(__name__)
State = IngestionJob.State
_IO_THREADS = 8


class Stop(Exception):
    """The job was cancelled or its file deleted while it ran."""


class Busy(Exception):
    """Another delivery of a step for this file holds the file's lock; the task retries later."""


# --- job state ------------------------------------------------------------------------------------------

def _job_state(job: IngestionJob, state: str, **fields) -> None:
    """Move the job on; a cancel written by the API is never overwritten by a running step."""
    fields.update(state=state, updated_at=timezone.now())
    if state in IngestionJob.TERMINAL:
        fields["finished_at"] = timezone.now()
    IngestionJob.objects.filter(pk=job.pk).exclude(state=State.CANCELLED).update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)


class _Stopwatch:
    """Times a job's stages: each lap adds the seconds since the previous one to the job's stage timings."""

    def __init__(self, job: IngestionJob):
        self.job = job
        self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        timings = self.job.stage_seconds or {}
        self.job.stage_seconds = {**timings, stage: round(timings.get(stage, 0) + now - self.last, 4)}
        IngestionJob.objects.filter(pk=self.job.pk).update(stage_seconds=self.job.stage_seconds)
        self.last = now


_held_lock: HeldLock | None = None


@contextmanager
def _file_lock(file_id: str):
    """One step at a time per file (a redelivered message never runs beside the original). The lock names its
    owner process and a heartbeat renews its short TTL, so a killed worker's lock is taken over at once on the
    same host (the pid is gone) and lapses within the TTL elsewhere (layra.locks)."""
    global _held_lock
    with held(redis_client("lock"), f"lock:ingest:{file_id}", ttl=settings.KNOWLEDGE_STEP_LOCK_TTL,
              wait=settings.KNOWLEDGE_STEP_LOCK_WAIT) as lock:
        if lock is None:
            raise Busy(file_id)
        _held_lock = lock
        try:
            yield
        finally:
            _held_lock = None


def _lock_refresh() -> None:
    if _held_lock is not None and not _held_lock.check():
        raise Busy("lock taken over")


def _check_live(job: IngestionJob) -> File:
    _lock_refresh()
    state = IngestionJob.objects.filter(pk=job.pk).values_list("state", flat=True).first()
    file = File.objects(file_id=job.file_id).first()
    if state == State.CANCELLED or file is None or file.is_delete:
        raise Stop()
    return file


def _report(job: IngestionJob, state: str, done: int, message: str) -> None:
    total = job.pages_total * 2  # each page is rendered, then embedded
    progress.progress_set(task_id=job.task_id, status=state, processed=done, total=total, message=message)


def _guarded(job: IngestionJob, step: Callable[[IngestionJob], bool], label: str) -> bool:
    """Run a pipeline step; a cancel, a refusal or a crash ends the file cleanly with a readable reason."""
    try:
        return step(job)
    except Busy:
        raise
    except Stop:
        ingestion_job_finish(job=job, state=State.CANCELLED, reason=CANCELLED_REASON)
    except (IngestError, DomainError) as exc:
        ingestion_job_finish(job=job, state=State.FAILED, reason=getattr(exc, "message", None) or str(exc))
    except Exception as exc:
        logger.exception("%s of job %s failed", label.lower(), job.pk)
        ingestion_job_finish(job=job, state=State.FAILED, reason=f"{label} failed: {exc.__class__.__name__}.")
    return False


# --- convert and render ---------------------------------------------------------------------------------

def ingest_run(*, job_id: int) -> bool:
    """Convert and render one file's pages into storage. True when the embed step should follow."""
    with _file_lock(IngestionJob.objects.values_list("file_id", flat=True).get(pk=job_id)):
        return _ingest(job_id)


def _ingest(job_id: int) -> bool:
    job = IngestionJob.objects.get(pk=job_id)
    if job.is_terminal or job.state in (State.EMBEDDING, State.INDEXING):
        return False  # finished, or the embed step owns the job now (it is redelivered itself if killed)
    return _guarded(job, _ingest_step, "Ingestion")


def _ingest_step(job: IngestionJob) -> bool:
    file = _check_live(job)
    watch = _Stopwatch(job)
    _job_state(job, State.CONVERTING, attempts=job.attempts + 1, started_at=job.started_at or timezone.now(),
               error="")
    File.objects(file_id=file.file_id).update_one(set__status=FileStatus.PROCESSING)
    progress.progress_set(task_id=job.task_id, status=State.CONVERTING, message="Converting")
    count, pages = source_pages(object_get(key=file.minio_filename), filename=file.filename,
                                on_convert=lambda: _job_state(job, State.CONVERTING))
    watch.lap("convert")
    _job_state(job, State.RENDERING, pages_total=count, pages_done=0)
    _report(job, State.RENDERING, 0, "Rendering pages")
    records: list[PageImage] = []
    batch = settings.KNOWLEDGE_PAGE_BATCH
    with ThreadPoolExecutor(_IO_THREADS) as pool:
        pending = []
        for number, (image, text) in enumerate(pages, start=1):
            key = page_key(file, number)
            pending.append(pool.submit(object_put, key=key, data=encode_page(image)))
            records.append(PageImage(images_id=page_image_id(file.file_id, number), page_number=number,
                                     minio_filename=key, text=text, has_text=bool(text.strip()),
                                     width=image.width, height=image.height))
            if number % batch == 0 or number == count:
                for future in pending:
                    future.result()
                pending.clear()
                _check_live(job)
                _report(job, State.RENDERING, number, f"Rendered {number}/{count} pages")
    File.objects(file_id=file.file_id).update_one(set__images=records, set__page_count=len(records))
    IngestionJob.objects.filter(pk=job.pk).update(pages_done=len(records))
    watch.lap("render")
    return True


# --- embed and index ------------------------------------------------------------------------------------

def embed_run(*, job_id: int) -> bool:
    """Embed the stored pages in batches, replace the file's vectors, mark the file completed."""
    with _file_lock(IngestionJob.objects.values_list("file_id", flat=True).get(pk=job_id)):
        return _embed(job_id)


def _embed(job_id: int) -> bool:
    job = IngestionJob.objects.get(pk=job_id)
    if job.is_terminal:
        return False
    return _guarded(job, _embed_step, "Embedding")


def _embedded_batches(job: IngestionJob, pages: list[PageImage], embedder, watch: _Stopwatch):
    """(image id, page number, vector) batches, consumed by vectors_replace_file, which writes each batch while
    the next one embeds."""
    batch = settings.KNOWLEDGE_EMBED_BATCH
    with ThreadPoolExecutor(_IO_THREADS) as pool:
        for start in range(0, len(pages), batch):
            chunk = pages[start:start + batch]
            images = page_images(chunk, embedder=embedder, pool=pool)
            watch.lap("load_images")
            vectors = embedder.embed_images(images, texts=[p.text or "" for p in chunk])
            watch.lap("embed")
            _check_live(job)
            done = start + len(chunk)
            _report(job, State.EMBEDDING, len(pages) + done, f"Embedded {done}/{len(pages)} pages")
            yield [(p.images_id, p.page_number, v) for p, v in zip(chunk, vectors, strict=True)]
        _job_state(job, State.INDEXING)
        _report(job, State.INDEXING, 2 * len(pages), "Indexing")


def _embed_step(job: IngestionJob) -> bool:
    file = _check_live(job)
    pages = sorted(file.images, key=lambda p: p.page_number)
    if not pages:
        raise IngestError("The file has no rendered pages.")
    _job_state(job, State.EMBEDDING, pages_total=len(pages))
    _report(job, State.EMBEDDING, len(pages), "Embedding pages")
    watch = _Stopwatch(job)
    embedder = get_embedder()
    watch.lap("model_load")
    vectors_replace_file(knowledge_base_id=file.knowledge_db_id, username=file.username, file_id=file.file_id,
                         batches=_embedded_batches(job, pages, embedder, watch), embedder=embedder)
    texts_replace_file(knowledge_base_id=file.knowledge_db_id, username=file.username, file_id=file.file_id,
                       pages=[(p.images_id, p.page_number, p.text or "") for p in pages])
    watch.lap("index")  # what the last batch's write took beyond the embedding, and the lexical index
    _check_live(job)
    KnowledgeBase.objects(knowledge_base_id=file.knowledge_db_id, embedder=None).update_one(
        set__embedder=f"{embedder.name}:{embedder.dim}")
    File.objects(file_id=file.file_id).update_one(set__status=FileStatus.COMPLETED, set__error=None)
    kb_version_bump(knowledge_base_id=file.knowledge_db_id)
    version_complete(file_id=file.file_id)  # a new version replaces the current one now
    _job_state(job, State.COMPLETED, pages_done=len(pages))
    _report(job, State.COMPLETED, 2 * len(pages), "Completed")
    return True
