"""The ingestion steps as plain functions: convert -> render -> store page images -> embed -> index.

Every step is safe to run twice: page image keys and ids are deterministic per file and page, and the
file's vectors are replaced, never appended. A failed or cancelled file keeps no page images or vectors.
"""

import io
import logging
import math
import mimetypes
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.base import File as DjangoFile
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFont

from knowledge import progress
from knowledge.detect import detect, open_image, pdf_page_count, text_page_count, text_pages
from knowledge.documents import File, KnowledgeBase, PageImage
from knowledge.models import IngestionJob
from layra.errors import DomainError
from layra.redis import redis_client
from layra.storage import is_s3, s3_client, storage

logger = logging.getLogger(__name__)
State = IngestionJob.State
_IO_THREADS = 8


class Stop(Exception):
    """The job was cancelled or its file deleted while it ran."""


class Busy(Exception):
    """Another delivery of a step for this file holds the file's lock; the task retries later."""


class IngestError(Exception):
    """A readable reason the file cannot be ingested (the file is marked failed with it)."""


# --- keys -----------------------------------------------------------------------------------------------

# Keys are built from server-made ids only (`kb/{kb id}/{file id}/...`), never from a username: a name is not a
# safe path segment (a user called `..` could not upload). Files stored before keep their objects where they are,
# under `{username}/{kb id}/{file id}/`: a file's prefix is read from its stored original's key.

def kb_prefix(*, knowledge_base_id: str) -> str:
    return f"kb/{knowledge_base_id}/"


def kb_prefixes(kb: KnowledgeBase) -> list[str]:
    """Every prefix a KB's objects may be under: the id-built one, and the owner-named one of older files."""
    prefixes = [kb_prefix(knowledge_base_id=kb.knowledge_base_id)]
    name = kb.username or ""
    if name and name not in (".", "..") and "/" not in name and "\\" not in name:
        prefixes.append(f"{name}/{kb.knowledge_base_id}/")
    return prefixes


def file_prefix(*, knowledge_base_id: str, file_id: str) -> str:
    return f"{kb_prefix(knowledge_base_id=knowledge_base_id)}{file_id}/"


def original_key(*, knowledge_base_id: str, file_id: str) -> str:
    return file_prefix(knowledge_base_id=knowledge_base_id, file_id=file_id) + "original"


def file_prefix_of(file: File) -> str:
    """Where this file's objects live: beside its stored original."""
    key = file.minio_filename or ""
    if key.endswith("/original"):
        return key[: -len("original")]
    return file_prefix(knowledge_base_id=file.knowledge_db_id, file_id=file.file_id)


def page_key(file: File, page_number: int) -> str:
    return f"{file_prefix_of(file)}pages/{page_number:05d}.jpg"


def page_image_id(file_id: str, page_number: int) -> str:
    return str(uuid.uuid5(uuid.UUID(file_id), f"page-{page_number}"))


# --- storage helpers ------------------------------------------------------------------------------------

def object_put(key: str, data: bytes) -> None:
    if is_s3():
        # One PUT on the shared client (the storage's save goes through a per-thread resource and a transfer
        # manager). The key is deterministic, so a retried task overwrites its own object.
        # AWS_S3_OBJECT_PARAMETERS (encryption, cache headers) apply as they do to the storage's own writes.
        parameters = {"ContentType": mimetypes.guess_type(key)[0] or "application/octet-stream",
                      **storage().get_object_parameters(key)}
        s3_client().put_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=key, Body=data, **parameters)
        return
    store = storage()
    store.delete(key)  # the filesystem renames on collision; keys must stay deterministic
    saved = store.save(key, ContentFile(data))
    if saved != key:
        raise RuntimeError(f"storage saved {saved!r} instead of {key!r}")


def object_put_file(key: str, fileobj) -> None:
    """Store a file's content read in chunks (a large upload is never whole in memory). Keys are deterministic."""
    fileobj.seek(0)
    if is_s3():
        from boto3.s3.transfer import TransferConfig

        parameters = {"ContentType": mimetypes.guess_type(key)[0] or "application/octet-stream",
                      **storage().get_object_parameters(key)}
        config = TransferConfig(multipart_threshold=_PART_BYTES, multipart_chunksize=_PART_BYTES, use_threads=False)
        s3_client().upload_fileobj(fileobj, settings.AWS_STORAGE_BUCKET_NAME, key, ExtraArgs=parameters,
                                   Config=config)
        return
    store = storage()
    store.delete(key)
    saved = store.save(key, DjangoFile(fileobj))  # the filesystem storage copies chunk by chunk
    if saved != key:
        raise RuntimeError(f"storage saved {saved!r} instead of {key!r}")


_PART_BYTES = 8 * 1024 * 1024


def object_get(key: str) -> bytes:
    store = storage()
    if is_s3():
        # One GET. The storage's file object does a HEAD first, then a threaded transfer manager download:
        # several times the CPU for a page image of ~100 kB. A missing key raises NoSuchKey (a ClientError).
        client = s3_client()
        return client.get_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=key)["Body"].read()
    with store.open(key, "rb") as fh:
        return fh.read()


def objects_delete(keys: list[str]) -> None:
    if not keys:
        return
    store = storage()
    if is_s3():
        client = s3_client()
        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            client.delete_objects(Bucket=settings.AWS_STORAGE_BUCKET_NAME,
                                  Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
        return
    for key in keys:
        store.delete(key)


def objects_delete_prefix(prefix: str) -> None:
    """Remove every object under a prefix (S3 listing; filesystem directory walk)."""
    store = storage()
    if is_s3():
        client = s3_client()
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Prefix=prefix):
            objects_delete([o["Key"] for o in page.get("Contents", [])])
        return
    root = Path(store.path(prefix.rstrip("/")))
    if root.exists():
        import shutil

        shutil.rmtree(root, ignore_errors=True)


# --- job state ------------------------------------------------------------------------------------------

def _job_state(job: IngestionJob, state: str, **fields) -> None:
    """Move the job on; a cancel written by the API is never overwritten by a running step."""
    fields.update(state=state, updated_at=timezone.now())
    if state in IngestionJob.TERMINAL:
        fields["finished_at"] = timezone.now()
    rows = IngestionJob.objects.filter(pk=job.pk)
    if state != State.CANCELLED:
        rows = rows.exclude(state=State.CANCELLED)
    rows.update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)


def _timed(job: IngestionJob, stage: str, started: float) -> float:
    """Add the seconds since `started` to the job's stage timings; return now."""
    now = time.perf_counter()
    job.stage_seconds = {**(job.stage_seconds or {}), stage: round((job.stage_seconds or {}).get(stage, 0)
                                                                   + now - started, 4)}
    IngestionJob.objects.filter(pk=job.pk).update(stage_seconds=job.stage_seconds)
    return now


_held_lock = None


@contextmanager
def _file_lock(file_id: str):
    """One step at a time per file (a redelivered message never runs beside the original). The TTL is short
    and refreshed per batch, so the lock of a killed worker expires quickly."""
    global _held_lock
    from redis.exceptions import LockError

    lock = redis_client("lock").lock(f"lock:ingest:{file_id}", timeout=settings.KNOWLEDGE_STEP_LOCK_TTL,
                                     blocking_timeout=settings.KNOWLEDGE_STEP_LOCK_WAIT, thread_local=False)
    if not lock.acquire():
        raise Busy(file_id)
    _held_lock = lock
    try:
        yield
    finally:
        _held_lock = None
        try:
            lock.release()
        except LockError:
            logger.warning("lock for file %s expired before release", file_id)


def _lock_refresh() -> None:
    from redis.exceptions import LockError

    if _held_lock is None:
        return
    try:
        _held_lock.reacquire()
    except LockError:  # it lapsed (a long model load): take it back unless another delivery has it now
        if not _held_lock.acquire(blocking=False):
            raise Busy("lock taken over") from None


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


def _kb_changed(knowledge_base_id: str, *, bump: bool) -> None:
    from knowledge.services import kb_cache_invalidate, kb_version_bump

    if bump:
        kb_version_bump(knowledge_base_id=knowledge_base_id)
    else:
        kb_cache_invalidate(knowledge_base_id=knowledge_base_id)


def file_outputs_remove(file: File) -> None:
    """Remove a file's page images and vectors (failure, cancel, delete). Safe to repeat."""
    from embeddings.services import file_index_delete

    file_index_delete(knowledge_base_id=file.knowledge_db_id, file_id=file.file_id)
    objects_delete_prefix(file_prefix_of(file) + "pages/")


def _finish_unsuccessfully(job: IngestionJob, file: File | None, state: str, reason: str) -> None:
    if file is not None:
        try:
            file_outputs_remove(file)
        except Exception:  # noqa: BLE001 - cleanup is retried by delete / cleanup; record the failure anyway
            logger.exception("cleanup of file %s failed", file.file_id)
        File.objects(file_id=file.file_id).update_one(set__status=state, set__error=reason or None,
                                                      set__images=[], set__page_count=0)
        _kb_changed(file.knowledge_db_id, bump=False)
    _job_state(job, state, error=reason)
    progress.progress_set(task_id=job.task_id, status=state, message=reason)


# --- convert and render ---------------------------------------------------------------------------------

def convert_office(data: bytes, ext: str) -> bytes:
    """LibreOffice headless -> PDF bytes, with a private profile dir and a timeout."""
    with tempfile.TemporaryDirectory(prefix="layra-soffice-") as tmp:
        src = Path(tmp) / f"input.{ext}"
        src.write_bytes(data)
        profile = Path(tmp) / "profile"
        cmd = [settings.KNOWLEDGE_SOFFICE, f"-env:UserInstallation={profile.as_uri()}", "--headless",
               "--norestore", "--nolockcheck", "--convert-to", "pdf", "--outdir", tmp, str(src)]
        try:
            result = subprocess.run(cmd, capture_output=True, timeout=settings.KNOWLEDGE_SOFFICE_TIMEOUT,
                                    check=False, start_new_session=True)
        except FileNotFoundError as exc:
            raise IngestError("Office conversion is not available (LibreOffice is not installed).") from exc
        except subprocess.TimeoutExpired as exc:
            raise IngestError("Office conversion timed out.") from exc
        out = Path(tmp) / "input.pdf"
        if result.returncode != 0 or not out.exists():
            raise IngestError("The office document could not be converted to PDF.")
        return out.read_bytes()


def _encode_page(img: Image.Image) -> bytes:
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=settings.KNOWLEDGE_PAGE_JPEG_QUALITY)
    return buf.getvalue()


def render_scale(width_pt: float, height_pt: float) -> float:
    """The configured DPI's scale, lowered for this page size so the image has at most MAX_PAGE_PIXELS pixels
    (a page with a 7,200 pt MediaBox would otherwise be a 100-megapixel image)."""
    scale = settings.KNOWLEDGE_RENDER_DPI / 72
    cap = settings.MAX_PAGE_PIXELS
    area = max(width_pt, 1e-3) * max(height_pt, 1e-3)
    scale = min(scale, math.sqrt(cap / area))
    while math.ceil(width_pt * scale) * math.ceil(height_pt * scale) > cap and scale > 1e-6:
        scale *= 0.995  # the renderer rounds each side up
    return scale


def _fit_pixels(img: Image.Image) -> Image.Image:
    """An uploaded image as a page: scaled down (aspect kept) to at most MAX_PAGE_PIXELS."""
    cap = settings.MAX_PAGE_PIXELS
    if img.width * img.height <= cap:
        return img
    factor = math.sqrt(cap / (img.width * img.height))
    size = (max(1, math.floor(img.width * factor)), max(1, math.floor(img.height * factor)))
    return img.resize(size, Image.Resampling.LANCZOS)


def _pdf_pages(data: bytes):
    """Yield (PIL image, text) per page, rendered at the configured DPI."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        for index in range(len(pdf)):
            page = pdf[index]
            try:
                image = page.render(scale=render_scale(*page.get_size())).to_pil()
                textpage = page.get_textpage()
                text = textpage.get_text_bounded().replace("\r\n", "\n").strip()
                textpage.close()
            finally:
                page.close()
            yield image, text
    finally:
        pdf.close()


_TEXT_SIZE = 15  # pagination (TEXT_COLS x TEXT_ROWS) is knowledge.detect's: the upload check counts the same pages


def _text_images(text: str):
    font = ImageFont.load_default(size=_TEXT_SIZE)
    for page_text in text_pages(text):
        img = Image.new("L", (850, 1100), 255)
        ImageDraw.Draw(img).multiline_text((40, 40), page_text, fill=0, font=font, spacing=4)
        yield img, page_text


def _source_pages(file: File, data: bytes, job: IngestionJob):
    """(page count, iterator of (image, text)) for any supported kind."""
    detected = detect(data, name=file.filename)
    if detected.kind == "office":
        _job_state(job, State.CONVERTING)
        data = convert_office(data, detected.ext)
        detected = detect(data, name=file.filename)
    if detected.kind == "pdf":
        count = pdf_page_count(data)
        if count > settings.KNOWLEDGE_MAX_PAGES:
            raise IngestError(f"The document has {count} pages; the limit is {settings.KNOWLEDGE_MAX_PAGES}.")
        return count, _pdf_pages(data)
    if detected.kind == "image":
        return 1, iter([(_fit_pixels(open_image(data)), "")])
    text = data.decode("utf-8")
    count = text_page_count(text, stop_after=settings.KNOWLEDGE_MAX_PAGES)
    if count > settings.KNOWLEDGE_MAX_PAGES:
        raise IngestError(f"The text has more than {settings.KNOWLEDGE_MAX_PAGES} pages; the limit is "
                          f"{settings.KNOWLEDGE_MAX_PAGES}.")
    return count, _text_images(text)  # rendered one page at a time


def _guarded(job: IngestionJob, step, label: str) -> bool:
    """Run a pipeline step; a cancel, a refusal or a crash ends the file cleanly with a readable reason."""
    file = File.objects(file_id=job.file_id).first()
    try:
        return step(job)
    except Busy:
        raise
    except Stop:
        _finish_unsuccessfully(job, file, State.CANCELLED, "Cancelled.")
    except (IngestError, DomainError) as exc:
        _finish_unsuccessfully(job, file, State.FAILED, getattr(exc, "message", None) or str(exc))
    except Exception as exc:
        logger.exception("%s of job %s failed", label.lower(), job.pk)
        _finish_unsuccessfully(job, file, State.FAILED, f"{label} failed: {exc.__class__.__name__}.")
    return False


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
    started = time.perf_counter()
    _job_state(job, State.CONVERTING, attempts=job.attempts + 1, started_at=job.started_at or timezone.now(),
               error="")
    File.objects(file_id=file.file_id).update_one(set__status="processing")
    progress.progress_set(task_id=job.task_id, status=State.CONVERTING, message="Converting")
    data = object_get(file.minio_filename)
    count, pages = _source_pages(file, data, job)
    started = _timed(job, "convert", started)
    _job_state(job, State.RENDERING, pages_total=count, pages_done=0)
    _report(job, State.RENDERING, 0, "Rendering pages")
    records: list[PageImage] = []
    batch = settings.KNOWLEDGE_PAGE_BATCH
    with ThreadPoolExecutor(_IO_THREADS) as pool:
        pending = []
        for number, (image, text) in enumerate(pages, start=1):
            key = page_key(file, number)
            pending.append(pool.submit(object_put, key, _encode_page(image)))
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
    _timed(job, "render", started)
    return True


# Stands in for the page image with backends that read only the text layer (Embedder.uses_images False).
_PLACEHOLDER = Image.new("L", (1, 1), 255)


def _load_image(key: str) -> Image.Image:
    img = Image.open(io.BytesIO(object_get(key)))
    img.load()
    return img


def page_images(pages: list[PageImage], *, embedder, pool: ThreadPoolExecutor | None = None) -> list[Image.Image]:
    """What the embedder reads for these stored pages: their images, or placeholders for text-only backends."""
    if not embedder.uses_images:
        return [_PLACEHOLDER] * len(pages)
    keys = [p.minio_filename for p in pages]
    return list(pool.map(_load_image, keys)) if pool else [_load_image(key) for key in keys]


def embed_run(*, job_id: int) -> bool:
    """Embed the stored pages in batches, replace the file's vectors, mark the file completed."""
    with _file_lock(IngestionJob.objects.values_list("file_id", flat=True).get(pk=job_id)):
        return _embed(job_id)


def _embed(job_id: int) -> bool:
    job = IngestionJob.objects.get(pk=job_id)
    if job.is_terminal:
        return False
    return _guarded(job, _embed_step, "Embedding")


def _embed_step(job: IngestionJob) -> bool:
    from embeddings.embedders import get_embedder
    from embeddings.services import texts_replace_file, vectors_replace_file

    file = _check_live(job)
    pages = sorted(file.images, key=lambda p: p.page_number)
    if not pages:
        raise IngestError("The file has no rendered pages.")
    _job_state(job, State.EMBEDDING, pages_total=len(pages))
    _report(job, State.EMBEDDING, len(pages), "Embedding pages")
    started = time.perf_counter()
    embedder = get_embedder()
    started = _timed(job, "model_load", started)
    batch = settings.KNOWLEDGE_EMBED_BATCH

    def embedded_batches():
        # Consumed by vectors_replace_file, which writes each batch while the next one embeds.
        nonlocal started
        with ThreadPoolExecutor(_IO_THREADS) as pool:
            for start in range(0, len(pages), batch):
                chunk = pages[start:start + batch]
                images = page_images(chunk, embedder=embedder, pool=pool)
                started = _timed(job, "load_images", started)
                vectors = embedder.embed_images(images, texts=[p.text or "" for p in chunk])
                started = _timed(job, "embed", started)
                _check_live(job)
                done = start + len(chunk)
                _report(job, State.EMBEDDING, len(pages) + done, f"Embedded {done}/{len(pages)} pages")
                yield [(p.images_id, p.page_number, v) for p, v in zip(chunk, vectors, strict=True)]
            _job_state(job, State.INDEXING)
            _report(job, State.INDEXING, 2 * len(pages), "Indexing")

    vectors_replace_file(knowledge_base_id=file.knowledge_db_id, username=file.username, file_id=file.file_id,
                         batches=embedded_batches(), embedder=embedder)
    texts_replace_file(knowledge_base_id=file.knowledge_db_id, username=file.username, file_id=file.file_id,
                       pages=[(p.images_id, p.page_number, p.text or "") for p in pages])
    _timed(job, "index", started)  # what the last batch's write took beyond the embedding
    _check_live(job)
    KnowledgeBase.objects(knowledge_base_id=file.knowledge_db_id, embedder=None).update_one(
        set__embedder=f"{embedder.name}:{embedder.dim}")
    File.objects(file_id=file.file_id).update_one(set__status="completed", set__error=None)
    _kb_changed(file.knowledge_db_id, bump=True)
    _job_state(job, State.COMPLETED, pages_done=len(pages))
    _report(job, State.COMPLETED, 2 * len(pages), "Completed")
    return True
