"""Writes to the page indexes: dense vectors (the embedder's shared Milvus collection) and the lexical index.

Page-vector caches are scoped per knowledge base (`page_scope`): a write to one KB never invalidates
another's cached pages although they share a collection.
"""

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
from pymilvus import MilvusClient

from embeddings.collections import (
    dense_collection_ensure,
    dense_collection_name,
    dense_collections,
    filter_quote,
    rows_matching,
)
from embeddings.embedders import get_embedder
from embeddings.lexical import LexicalPage, lexical_index
from embeddings.page_cache import generation_bump, pages_forget, pages_store
from layra.errors import ValidationError
from layra.milvus import milvus_client

logger = logging.getLogger(__name__)

INSERT_BATCH_ROWS = 5000
PageRows = list[tuple[str, int, np.ndarray]]  # (image_id, page_number, vectors)


def page_scope(*, collection: str, knowledge_base_id: str) -> str:
    """The page caches' namespace of one KB in one collection."""
    return f"{collection}:{knowledge_base_id}"


def embedder_tag(*, embedder: str, dim: int) -> str:
    """How a knowledge base records the embedder that built it (`KnowledgeBase.embedder`)."""
    return f"{embedder}:{dim}"


def embedder_check(*, knowledge_base_id: str, recorded: str | None, embedder: str, dim: int) -> None:
    """Refuse to search or extend a KB built by another embedder (its vectors live in another space)."""
    if recorded and recorded != embedder_tag(embedder=embedder, dim=dim):
        name, _, kb_dim = recorded.partition(":")
        raise ValidationError(
            f"This knowledge base was indexed with embedder {name!r} (dim {kb_dim}), not {embedder!r} (dim {dim}); "
            "re-index it with the current embedder.",
            code="embedder_mismatch",
            details={"knowledge_base_id": knowledge_base_id, "collection_embedder": name,
                     "collection_dim": int(kb_dim) if kb_dim.isdigit() else None, "embedder": embedder, "dim": dim},
        )


def _key_filter(*, knowledge_base_id: str, file_id: str | None = None) -> str:
    expr = f"knowledge_base_id == {filter_quote(knowledge_base_id)}"
    return expr + (f" and file_id == {filter_quote(file_id)}" if file_id else "")


def vectors_insert(*, name: str, knowledge_base_id: str, username: str, file_id: str, pages: PageRows,
                   client: MilvusClient | None = None, batch_rows: int = INSERT_BATCH_ROWS) -> int:
    """Insert many pages per call (rows grouped into batches of at most batch_rows)."""
    client = client or milvus_client()
    inserted = 0
    batch: list[dict] = []
    for image_id, page_number, vectors in pages:
        # float32 rows go to pymilvus as arrays: it converts each row itself, a list would be converted twice.
        for row in np.asarray(vectors, dtype=np.float32):
            batch.append({"vector": row, "knowledge_base_id": knowledge_base_id, "username": username,
                          "file_id": file_id, "image_id": image_id, "page_number": int(page_number)})
            if len(batch) >= batch_rows:
                inserted += client.insert(collection_name=name, data=batch)["insert_count"]
                batch = []
    if batch:
        inserted += client.insert(collection_name=name, data=batch)["insert_count"]
    return inserted


def _pages_validate(pages: PageRows, *, dim: int) -> None:
    for image_id, _, vectors in pages:
        matrix = np.asarray(vectors)
        if matrix.ndim != 2 or matrix.shape[1] != dim:
            raise ValidationError(f"Vectors of page {image_id} are not (n, {dim}).")
        if not np.isfinite(matrix).all():
            raise ValidationError(f"Vectors of page {image_id} contain NaN or infinite values.")


def vectors_replace_file(*, knowledge_base_id: str, username: str, file_id: str, pages: PageRows | None = None,
                         batches: Iterable[PageRows] | None = None, embedder=None) -> int:
    """Replace a file's vectors in its embedder's collection; safe to run twice. Returns rows inserted.

    `pages` are checked in full before the old rows go. `batches` may be a generator still embedding: each
    batch is written (Milvus, then the Redis page tier) in a background thread while the next one is produced,
    so indexing overlaps embedding. A failure part way leaves some rows of the file, which the caller removes
    (a failed file keeps no vectors) or a rerun replaces.
    """
    embedder = embedder or get_embedder()
    if pages is not None:
        _pages_validate(pages, dim=embedder.dim)
        batches = [pages]
    client = milvus_client()
    name = dense_collection_ensure(embedder=embedder.name, dim=embedder.dim, client=client)
    scope = page_scope(collection=name, knowledge_base_id=knowledge_base_id)
    client.delete(collection_name=name, filter=_key_filter(knowledge_base_id=knowledge_base_id, file_id=file_id))
    pages_forget(name=scope, file_id=file_id)
    generation_bump(scope)

    def write(batch: PageRows) -> int:
        rows = vectors_insert(name=name, knowledge_base_id=knowledge_base_id, username=username, file_id=file_id,
                              pages=batch, client=client)
        pages_store(name=scope, file_id=file_id, pages=[(image_id, vectors) for image_id, _, vectors in batch])
        return rows

    inserted = 0
    with ThreadPoolExecutor(1, thread_name_prefix="vectors-write") as writer:
        pending = None
        try:
            for batch in batches:
                _pages_validate(batch, dim=embedder.dim)
                if pending is not None:
                    inserted += pending.result()
                pending = writer.submit(write, batch)
        except BaseException:
            if pending is not None:
                wait([pending])  # the write in flight ends before the caller cleans the file up
            raise
        if pending is not None:
            inserted += pending.result()
    generation_bump(scope)
    return inserted


def texts_replace_file(*, knowledge_base_id: str, username: str, file_id: str,
                       pages: list[tuple[str, int, str]]) -> int:
    """Index the text layer of a file's pages (image_id, page_number, text) for lexical search."""
    return lexical_index().replace_file(
        knowledge_base_id=knowledge_base_id, username=username, file_id=file_id,
        pages=[LexicalPage(image_id=i, page_number=n, text=t) for i, n, t in pages])


def file_index_delete(*, knowledge_base_id: str, file_id: str) -> None:
    """Remove a file's rows from every page index (every embedder's collection, the lexical index)."""
    client = milvus_client()
    for name in dense_collections(client):
        client.delete(collection_name=name, filter=_key_filter(knowledge_base_id=knowledge_base_id, file_id=file_id))
        scope = page_scope(collection=name, knowledge_base_id=knowledge_base_id)
        pages_forget(name=scope, file_id=file_id)
        generation_bump(scope)
    lexical_index().delete_file(knowledge_base_id=knowledge_base_id, file_id=file_id)


def knowledge_base_index_delete(*, knowledge_base_id: str) -> None:
    """Remove a KB's rows by filter (never another KB's), from every page index."""
    client = milvus_client()
    for name in dense_collections(client):
        client.delete(collection_name=name, filter=_key_filter(knowledge_base_id=knowledge_base_id))
        scope = page_scope(collection=name, knowledge_base_id=knowledge_base_id)
        pages_forget(name=scope)
        generation_bump(scope)
    lexical_index().delete_knowledge_base(knowledge_base_id=knowledge_base_id)


def user_index_delete(*, username: str) -> None:
    """Remove every row of this owner from every page index, whichever KB it is in (account deletion)."""
    client = milvus_client()
    for name in dense_collections(client):
        client.delete(collection_name=name, filter=f"username == {filter_quote(username)}")
    lexical_index().delete_user(username=username)


def user_index_rows(*, username: str) -> int:
    """How many rows of this owner the page indexes hold (read strongly)."""
    client = milvus_client()
    rows = sum(len(rows_matching(client, name, expr=f"username == {filter_quote(username)}", fields=["image_id"]))
               for name in dense_collections(client))
    return rows + lexical_index().user_row_count(username=username)


def dense_page_ids(*, knowledge_base_id: str, embedder: str, dim: int) -> dict[str, str]:
    """{image_id: file_id} of a KB's pages that have vectors (consistency checks)."""
    client = milvus_client()
    name = dense_collection_name(embedder=embedder, dim=dim)
    if not client.has_collection(collection_name=name):
        return {}
    rows = rows_matching(client, name, expr=_key_filter(knowledge_base_id=knowledge_base_id),
                         fields=["image_id", "file_id"])
    return {r["image_id"]: r["file_id"] for r in rows}


def vectors_delete_knowledge_base(*, knowledge_base_id: str, embedder: str, dim: int) -> None:
    """Remove a KB's rows from one embedder's collection (after it moved to another embedder)."""
    client = milvus_client()
    name = dense_collection_name(embedder=embedder, dim=dim)
    if client.has_collection(collection_name=name):
        client.delete(collection_name=name, filter=_key_filter(knowledge_base_id=knowledge_base_id))
    scope = page_scope(collection=name, knowledge_base_id=knowledge_base_id)
    pages_forget(name=scope)
    generation_bump(scope)
