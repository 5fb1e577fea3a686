"""The Milvus vector store: one collection per knowledge base (`colqwen{kb_id}` with - → _)."""

import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
from django.conf import settings
from pymilvus import DataType, MilvusClient

from embeddings.page_cache import generation_bump, pages_forget, pages_store
from layra.errors import ValidationError
from layra.milvus import milvus_client

logger = logging.getLogger(__name__)

INSERT_BATCH_ROWS = 5000
HNSW_PARAMS = {"M": 32, "efConstruction": 500}
SCHEMA_VERSION_KEY = "layra.schema_version"


def collection_name(*, knowledge_base_id: str) -> str:
    return "colqwen" + knowledge_base_id.replace("-", "_")


def _description(*, embedder: str, dim: int, schema_version: int) -> str:
    return json.dumps({"embedder": embedder, "dim": dim, "schema_version": schema_version})


def collection_info(*, name: str, client: MilvusClient | None = None) -> dict:
    """{"embedder", "dim", "schema_version"} recorded on the collection (dim read from the schema)."""
    client = client or milvus_client()
    desc = client.describe_collection(collection_name=name)
    info: dict = {}
    try:
        info = json.loads(desc.get("description") or "{}")
    except ValueError:
        info = {}
    props = desc.get("properties") or {}
    for field in desc.get("fields", []):
        if field.get("name") == "vector":
            info["dim"] = int(field.get("params", {}).get("dim", info.get("dim", 0)))
    info.setdefault("embedder", props.get("layra.embedder"))
    info["schema_version"] = int(props.get(SCHEMA_VERSION_KEY, info.get("schema_version", 1)) or 1)
    return info


def collection_create(*, client: MilvusClient, name: str, dim: int, description: str = "") -> None:
    """The page-vector collection of DESIGN: HNSW (IP) on the vectors, inverted indexes on file_id and image_id."""
    schema = MilvusClient.create_schema(auto_id=True, enable_dynamic_field=False, description=description)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("image_id", DataType.VARCHAR, max_length=64)
    schema.add_field("page_number", DataType.INT64)
    schema.add_field("file_id", DataType.VARCHAR, max_length=64)
    index_params = client.prepare_index_params()
    index_params.add_index(field_name="vector", index_type="HNSW", metric_type="IP", params=dict(HNSW_PARAMS))
    for field in ("file_id", "image_id"):
        index_params.add_index(field_name=field, index_type=settings.MILVUS_SCALAR_INDEX)
    client.create_collection(collection_name=name, schema=schema, index_params=index_params)


def collection_ensure(
    *, knowledge_base_id: str, embedder: str, dim: int, client: MilvusClient | None = None
) -> str:
    """Create the KB's collection if missing; refuse one that another embedder (or dim) made."""
    from embeddings.migrations_vectors import LATEST_VERSION

    client = client or milvus_client()
    name = collection_name(knowledge_base_id=knowledge_base_id)
    if client.has_collection(collection_name=name):
        collection_check(name=name, embedder=embedder, dim=dim, client=client)
        return name
    collection_create(client=client, name=name, dim=dim,
                      description=_description(embedder=embedder, dim=dim, schema_version=LATEST_VERSION))
    try:
        client.alter_collection_properties(
            collection_name=name,
            properties={"layra.embedder": embedder, SCHEMA_VERSION_KEY: str(LATEST_VERSION)},
        )
    except Exception:  # noqa: BLE001 - the description already records the embedder; properties are a bonus
        logger.info("collection properties not supported for %s", name)
    client.load_collection(collection_name=name)
    return name


def collection_check(*, name: str, embedder: str, dim: int, client: MilvusClient | None = None) -> dict:
    info = collection_info(name=name, client=client)
    if info.get("embedder") not in (None, embedder) or int(info.get("dim") or dim) != dim:
        raise ValidationError(
            f"This knowledge base was indexed with embedder {info.get('embedder')!r} (dim {info.get('dim')}), "
            f"not {embedder!r} (dim {dim}); re-index it with the current embedder.",
            code="embedder_mismatch",
            details={"collection": name, "collection_embedder": info.get("embedder"),
                     "collection_dim": info.get("dim"), "embedder": embedder, "dim": dim},
        )
    return info


def filter_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def vectors_insert(*, name: str, file_id: str, pages: list[tuple[str, int, np.ndarray]],
                   client: MilvusClient | None = None, batch_rows: int = INSERT_BATCH_ROWS) -> int:
    """Insert many pages per call (rows grouped into batches of at most batch_rows)."""
    client = client or milvus_client()
    inserted = 0
    batch: list[dict] = []
    for image_id, page_number, vectors in pages:
        # float32 rows go to pymilvus as arrays: it converts each row itself, a list would be converted twice.
        for row in np.asarray(vectors, dtype=np.float32):
            batch.append({"vector": row, "image_id": image_id, "page_number": int(page_number), "file_id": file_id})
            if len(batch) >= batch_rows:
                inserted += client.insert(collection_name=name, data=batch)["insert_count"]
                batch = []
    if batch:
        inserted += client.insert(collection_name=name, data=batch)["insert_count"]
    return inserted


PageRows = list[tuple[str, int, np.ndarray]]


def _pages_validate(pages: PageRows, *, dim: int) -> None:
    for image_id, _, vectors in pages:
        matrix = np.asarray(vectors)
        if matrix.ndim != 2 or matrix.shape[1] != dim:
            raise ValidationError(f"Vectors of page {image_id} are not (n, {dim}).")
        if not np.isfinite(matrix).all():
            raise ValidationError(f"Vectors of page {image_id} contain NaN or infinite values.")


def vectors_replace_file(*, knowledge_base_id: str, file_id: str, pages: PageRows | None = None,
                         batches: Iterable[PageRows] | None = None) -> int:
    """Replace a file's vectors; safe to run twice. Returns rows inserted.

    `pages` are checked in full before the old rows go. `batches` may be a generator still embedding: each
    batch is written (Milvus, then the Redis page tier) in a background thread while the next one is produced,
    so indexing overlaps embedding. A failure part way leaves some rows of the file, which the caller removes
    (a failed file keeps no vectors) or a rerun replaces.
    """
    from embeddings.embedders import get_embedder

    embedder = get_embedder()
    if pages is not None:
        _pages_validate(pages, dim=embedder.dim)
        batches = [pages]
    client = milvus_client()
    name = collection_ensure(knowledge_base_id=knowledge_base_id, embedder=embedder.name, dim=embedder.dim,
                             client=client)
    client.delete(collection_name=name, filter=f"file_id == {filter_quote(file_id)}")
    pages_forget(name=name, file_id=file_id)
    generation_bump(name)

    def write(batch: PageRows) -> int:
        rows = vectors_insert(name=name, file_id=file_id, pages=batch, client=client)
        pages_store(name=name, file_id=file_id, pages=[(image_id, vectors) for image_id, _, vectors in batch])
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
    generation_bump(name)
    return inserted


def vectors_delete_file(*, knowledge_base_id: str, file_id: str) -> None:
    client = milvus_client()
    name = collection_name(knowledge_base_id=knowledge_base_id)
    if client.has_collection(collection_name=name):
        client.delete(collection_name=name, filter=f"file_id == {filter_quote(file_id)}")
    pages_forget(name=name, file_id=file_id)
    generation_bump(name)


def collection_drop(*, knowledge_base_id: str) -> None:
    client = milvus_client()
    name = collection_name(knowledge_base_id=knowledge_base_id)
    if client.has_collection(collection_name=name):
        client.drop_collection(collection_name=name)
    pages_forget(name=name)
    generation_bump(name)
