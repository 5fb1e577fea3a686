"""Small store helpers shared by the operator services (reading the page-vector collections)."""

from collections.abc import Iterator

from embeddings.collections import DENSE_FIELDS, dense_collections, rows_matching
from layra.milvus import milvus_client

VECTOR_FIELDS = DENSE_FIELDS


def kb_collections() -> list[str]:
    """The page-vector collections (one per embedder, shared by every KB)."""
    return dense_collections(milvus_client())


def collection_rows(name: str, *, fields: list[str] | None = None) -> Iterator[dict]:
    """Every row of a collection (backup, cleanup, counts)."""
    fields = fields or ["image_id", "page_number", "file_id"]
    yield from rows_matching(milvus_client(), name, expr="pk >= 0", fields=list(dict.fromkeys(["pk", *fields])))
