"""Helpers for knowledge tests: upload shortcuts, store inspection, waiting on jobs."""

import time

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile


def uploaded(name: str, data: bytes, content_type: str = "application/octet-stream") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def bucket_keys(prefix: str = "") -> list[str]:
    from layra.storage import s3_client

    client = s3_client()
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.AWS_STORAGE_BUCKET_NAME,
                                                                  Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def upload_url(knowledge_base_id: str) -> str:
    return f"/api/v1/knowledge-bases/{knowledge_base_id}/files/"


def assert_nothing_stored(knowledge_base_id: str) -> None:
    """A refused upload leaves no file record, no job and no object."""
    from knowledge.documents import File
    from knowledge.models import IngestionJob

    assert File.objects(knowledge_db_id=knowledge_base_id).count() == 0
    assert IngestionJob.objects.filter(knowledge_base_id=knowledge_base_id).count() == 0
    assert bucket_keys() == []


def file_vectors(knowledge_base_id: str, file_id: str) -> list[dict]:
    """The file's rows in the current embedder's shared collection (read strongly: right after a write)."""
    from embeddings.collections import dense_collection_name
    from embeddings.embedders import embedder_spec
    from layra.milvus import milvus_client

    client = milvus_client()
    spec = embedder_spec()
    name = dense_collection_name(embedder=spec.name, dim=spec.dim)
    if not client.has_collection(name):
        return []
    client.load_collection(name)
    return client.query(name, filter=f'knowledge_base_id == "{knowledge_base_id}" and file_id == "{file_id}"',
                        output_fields=["image_id", "page_number"], limit=16384, consistency_level="Strong")


def assert_one_set_of_vectors(file) -> None:
    """The file has exactly one set of vectors: every stored page, and as many rows (read strongly) as the
    configured embedder makes of the stored page images again; a duplicate row or a missing page fails."""
    import io

    from PIL import Image

    from embeddings.embedders import get_embedder
    from layra.storage import object_get

    rows = file_vectors(file.knowledge_db_id, file.file_id)
    assert {r["image_id"] for r in rows} == {p.images_id for p in file.images}
    images = [Image.open(io.BytesIO(object_get(key=p.minio_filename))) for p in file.images]
    expected = sum(v.shape[0] for v in get_embedder().embed_images(images, texts=[p.text for p in file.images]))
    assert len(rows) == expected, f"{len(rows)} vector rows, {expected} expected (duplicates?)"


def index_pages(*, user, knowledge_base_id: str, texts: list[str], filename: str = "doc.pdf",
                with_text: list[bool] | None = None, noise_pages: frozenset[int] = frozenset()) -> str:
    """A completed file whose pages are indexed as the pipeline would: Mongo pages (a stored JPEG each), dense
    vectors of each page's text, and the lexical index for the pages that have a text layer (`with_text`, all
    by default; a page without is a scan: it keeps its vectors but has no text). `noise_pages` (page numbers)
    get random vectors: pages whose dense side matches nothing, like a figure-heavy page. Returns the file id."""
    import io

    import numpy as np
    from PIL import Image

    from embeddings.embedders import get_embedder
    from embeddings.services import embedder_tag, texts_replace_file, vectors_replace_file
    from knowledge.documents import File, PageImage
    from knowledge.services import kb_version_bump
    from layra.ids import new_id
    from layra.storage import storage

    with_text = with_text or [True] * len(texts)
    file_id = new_id()
    embedder = get_embedder()
    pages = []
    for i, text in enumerate(texts):
        buffer = io.BytesIO()
        Image.new("RGB", (600, 800), (255, 255, 255 - i)).save(buffer, format="JPEG")
        key = f"test/{file_id}/{i + 1}.jpg"
        storage().save(key, io.BytesIO(buffer.getvalue()))
        pages.append(PageImage(images_id=f"{file_id}-p{i + 1}", page_number=i + 1, minio_filename=key,
                               text=text if with_text[i] else "", has_text=with_text[i], width=600, height=800))
    File(file_id=file_id, knowledge_db_id=knowledge_base_id, username=user.username, filename=filename,
         minio_filename=f"test/{file_id}/original", status="completed", page_count=len(pages), images=pages).save()
    vectors = embedder.embed_images([None] * len(texts), texts=texts)
    rng = np.random.default_rng(7)
    for number in noise_pages:
        noise = rng.standard_normal(vectors[number - 1].shape).astype(np.float32)
        vectors[number - 1] = noise / np.linalg.norm(noise, axis=1, keepdims=True)
    vectors_replace_file(knowledge_base_id=knowledge_base_id, username=user.username, file_id=file_id,
                         pages=[(p.images_id, p.page_number, v) for p, v in zip(pages, vectors, strict=True)])
    texts_replace_file(knowledge_base_id=knowledge_base_id, username=user.username, file_id=file_id,
                       pages=[(p.images_id, p.page_number, p.text) for p in pages])
    kb_version_bump(knowledge_base_id=knowledge_base_id, embedder=embedder_tag(embedder=embedder.name,
                                                                              dim=embedder.dim))
    return file_id


def wait_job(task_id: str, *, timeout: float = 120, worker=None, states=("completed", "failed", "cancelled")):
    from knowledge.models import IngestionJob

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = IngestionJob.objects.filter(task_id=task_id).first()
        if job is not None and job.state in states:
            return job
        time.sleep(0.2)
    log = worker.log()[-4000:] if worker is not None else ""
    raise AssertionError(f"job {task_id} did not reach {states} in {timeout}s\n{log}")
