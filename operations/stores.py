"""Small store helpers shared by the operator services (listing objects, reading collections)."""

from collections.abc import Iterator

from django.conf import settings

from embeddings.collections import DENSE_FIELDS, dense_collections, rows_matching
from layra.milvus import milvus_client
from layra.storage import is_s3, s3_client, storage

VECTOR_FIELDS = DENSE_FIELDS


def object_keys(prefix: str = "") -> Iterator[str]:
    store = storage()
    if is_s3():
        client = s3_client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.AWS_STORAGE_BUCKET_NAME,
                                                                      Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"]
        return
    from pathlib import Path

    root = Path(store.location)
    for path in sorted(root.rglob("*")):
        if path.is_file():
            key = str(path.relative_to(root))
            if key.startswith(prefix):
                yield key


def object_exists(key: str) -> bool:
    return storage().exists(key)


def kb_collections() -> list[str]:
    """The page-vector collections (one per embedder, shared by every KB)."""
    return dense_collections(milvus_client())


def collection_rows(name: str, *, fields: list[str] | None = None) -> Iterator[dict]:
    """Every row of a collection (backup, cleanup, counts)."""
    fields = fields or ["image_id", "page_number", "file_id"]
    yield from rows_matching(milvus_client(), name, expr="pk >= 0", fields=list(dict.fromkeys(["pk", *fields])))
