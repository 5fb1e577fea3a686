"""Content checksums that survive a round trip through another store: a file's sha256, and order-free digests
of Mongo documents and vector rows (a restore or a migration may reorder rows and gives them new primary keys,
so the digest covers what a row holds, never where it sits or its `pk`)."""

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from bson import json_util

from embeddings.collections import DENSE_FIELDS, rows_matching
from layra.milvus import milvus_client
from layra.mongo import database

VECTOR_ROW_FIELDS = DENSE_FIELDS[1:]  # every field but `pk`: the digest the backup took is checked on restore


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _unordered_digest(items: Iterable[bytes]) -> str:
    """sha256 over the sorted per-item digests: equal for the same multiset of items in any order."""
    digest = hashlib.sha256()
    for item in sorted(hashlib.sha256(i).digest() for i in items):
        digest.update(item)
    return digest.hexdigest()


def vector_row_bytes(row: dict, fields: list[str]) -> bytes:
    """A row as bytes: its scalar fields, then its vector as float32 (what Milvus stores, whatever JSON made of it)."""
    scalars = "\x1f".join(str(row.get(f, "")) for f in fields if f != "vector")
    vector = np.asarray(row.get("vector", []), dtype=np.float32).tobytes() if "vector" in fields else b""
    return scalars.encode() + b"\x1e" + vector


def vector_rows_digest(rows: Iterable[dict], fields: list[str] | None = None) -> str:
    fields = fields or VECTOR_ROW_FIELDS
    return _unordered_digest(vector_row_bytes(r, fields) for r in rows)


def milvus_digest(name: str, *, expr: str = "pk >= 0", fields: list[str] | None = None) -> str:
    fields = fields or VECTOR_ROW_FIELDS
    return vector_rows_digest(rows_matching(milvus_client(), name, expr=expr, fields=fields), fields)


def mongo_document_bytes(doc: dict) -> bytes:
    return json_util.dumps(doc, sort_keys=True, json_options=json_util.CANONICAL_JSON_OPTIONS).encode()


def mongo_docs_digest(docs: Iterable[dict]) -> str:
    return _unordered_digest(mongo_document_bytes(d) for d in docs)


def mongo_digest(collection: str) -> str:
    return mongo_docs_digest(database()[collection].find({}))
