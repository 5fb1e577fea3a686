"""The shared Milvus collections: one page-vector collection per embedder (name and dim).

Every knowledge base's rows live in its embedder's collection with `knowledge_base_id` as the partition key
(Milvus hashes it to a partition, so a filter on it prunes the search) and `username` as a scalar field; every
search and delete filters by KB ids. Collection-per-KB does not scale past ~1,000 KBs per cluster (Milvus'
own guidance), which is why the layout changed (see `migrate_vectors`).
"""

import json
import logging
import threading
import time

from pymilvus import DataType, MilvusClient, MilvusException

from layra.milvus import client_generation, milvus_client, server_features

logger = logging.getLogger(__name__)

DENSE_PREFIX = "layra_pages_"
HNSW_PARAMS = {"M": 32, "efConstruction": 500}
SCHEMA_VERSION = 3  # 1-2: per-KB collections (`colqwen{kb}`); 3: shared, partition key knowledge_base_id
DENSE_FIELDS = ["pk", "vector", "knowledge_base_id", "username", "file_id", "image_id", "page_number"]
SCALAR_INDEXED = ("knowledge_base_id", "file_id", "image_id")
_ready: set[tuple[int, str]] = set()  # (client generation, name): made and loaded on that server
_ready_lock = threading.Lock()


def dense_collection_name(*, embedder: str, dim: int) -> str:
    return f"{DENSE_PREFIX}{embedder}_{dim}"


def embedder_of(name: str) -> tuple[str, int] | None:
    """(embedder, dim) of a dense collection name, None for any other collection."""
    if not name.startswith(DENSE_PREFIX):
        return None
    embedder, _, dim = name[len(DENSE_PREFIX):].rpartition("_")
    return (embedder, int(dim)) if embedder and dim.isdigit() else None


def filter_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def in_filter(field: str, values: list[str]) -> str:
    return f"{field} in [" + ",".join(filter_quote(v) for v in values) + "]"


def not_in_filter(field: str, values: list[str]) -> str:
    return f"{field} not in [" + ",".join(filter_quote(v) for v in values) + "]"


def scalar_index_type(client: MilvusClient) -> str:
    """INVERTED where the server has it (2.4+, Lite), Trie on 2.3 (its only VARCHAR index)."""
    return "INVERTED" if server_features(client).inverted else "Trie"


def dense_collection_create(*, client: MilvusClient, name: str, dim: int, embedder: str) -> None:
    schema = MilvusClient.create_schema(
        auto_id=True, enable_dynamic_field=False,
        description=json.dumps({"embedder": embedder, "dim": dim, "schema_version": SCHEMA_VERSION}),
    )
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("knowledge_base_id", DataType.VARCHAR, max_length=64, is_partition_key=True)
    schema.add_field("username", DataType.VARCHAR, max_length=150)
    schema.add_field("file_id", DataType.VARCHAR, max_length=64)
    schema.add_field("image_id", DataType.VARCHAR, max_length=64)
    schema.add_field("page_number", DataType.INT64)
    index_params = client.prepare_index_params()
    index_params.add_index(field_name="vector", index_type="HNSW", metric_type="IP", params=dict(HNSW_PARAMS))
    scalar = scalar_index_type(client)
    for field in SCALAR_INDEXED:
        index_params.add_index(field_name=field, index_type=scalar)
    # Strong by default: a delete-by-filter finds its rows with the collection's level, and a file replaced right
    # after it was written must lose every old row. Searches pass their own level (knowledge/search.py).
    client.create_collection(collection_name=name, schema=schema, index_params=index_params,
                             consistency_level="Strong")


def dense_collection_ensure(*, embedder: str, dim: int, client: MilvusClient | None = None) -> str:
    """The embedder's collection, created and loaded on first use (checked once per process)."""
    client = client or milvus_client()
    name = dense_collection_name(embedder=embedder, dim=dim)
    key = (client_generation(), name)
    if key in _ready:
        return name
    with _ready_lock:
        if key not in _ready:
            collection_ready(client, name, indexed={"vector", *SCALAR_INDEXED},
                             create=lambda: dense_collection_create(client=client, name=name, dim=dim,
                                                                    embedder=embedder))
            _ready.add(key)
    return name


def collection_ready(client: MilvusClient, name: str, *, indexed: set[str], create, wait_s: float = 60) -> None:
    """Create the collection unless it exists, then load it once every index is there.

    Processes race here (the worker's processes, the web's): one creates the collection, then adds its indexes one
    call after another. Another process that loaded it in between would pin its index set, and a 2.3 server then
    refuses every later load ("can't change the index for loaded collection"), so nobody loads before the last
    index exists."""
    if not client.has_collection(collection_name=name):
        try:
            create()
        except Exception:  # noqa: BLE001 - another process may have created it first
            if not client.has_collection(collection_name=name):
                raise
    deadline = time.monotonic() + wait_s
    while (missing := {f for f in indexed if not has_index(client, name, f)}) and time.monotonic() < deadline:
        time.sleep(0.2)
    if missing:
        raise RuntimeError(f"collection {name} still has no index on {sorted(missing)} after {wait_s:g} s")
    try:
        client.load_collection(collection_name=name)
    except MilvusException as exc:
        if "change the index" not in str(exc):
            raise
        # Loaded earlier with fewer indexes (the race above, before it was closed): load it again with all of them.
        # Searches meanwhile meet a released collection and load it themselves (loaded_call).
        logger.warning("collection %s was loaded with an older index set; loading it again", name)
        client.release_collection(collection_name=name)
        client.load_collection(collection_name=name)


def has_index(client: MilvusClient, name: str, field: str) -> bool:
    """Whether `field` has its index (named after the field). Asked by name: list_indexes() can answer [] for a
    collection that is not loaded."""
    try:
        return bool(client.describe_index(collection_name=name, index_name=field))
    except MilvusException:  # pymilvus raises when the index does not exist
        return False


def loaded_call(client: MilvusClient, name: str, call):
    """`call()`, loading the collection first and trying again when the server has released it (a restarted
    server comes back with every collection released; the process' record that it was loaded is then stale)."""
    try:
        return call()
    except MilvusException as exc:
        if "load" not in str(exc).lower() and "released" not in str(exc).lower():
            raise
        client.load_collection(collection_name=name)
        return call()


def dense_collections(client: MilvusClient | None = None) -> list[str]:
    client = client or milvus_client()
    return sorted(n for n in client.list_collections() if embedder_of(n))


def forget_ready() -> None:
    """After a collection is dropped behind this process' back (tests, restore)."""
    with _ready_lock:
        _ready.clear()


QUERY_LIMIT = 16384  # Milvus caps offset + limit of one query


def rows_count(client: MilvusClient, name: str, *, expr: str) -> int:
    """How many rows match `expr`, read strongly."""
    return int(client.query(collection_name=name, filter=expr, output_fields=["count(*)"],
                            consistency_level="Strong")[0]["count(*)"])


def rows_matching(client: MilvusClient, name: str, *, expr: str, fields: list[str], batch: int = 4000,
                  count: int | None = None) -> list[dict]:
    """Every row matching `expr`, read strongly (what was just written included); `count`: rows_count's answer
    when the caller already has it.

    One plain query when the rows fit in one (the usual case); a query iterator otherwise. pymilvus' iterator
    takes its snapshot time from the server where it can; a 2.3 server cannot give it one, and the iterator's
    own clock then missed rows written moments before (seen in the tests), so small reads avoid it."""
    client.load_collection(collection_name=name)
    if count is None:
        count = rows_count(client, name, expr=expr)
    if count <= QUERY_LIMIT:
        return client.query(collection_name=name, filter=expr, output_fields=fields, limit=QUERY_LIMIT,
                            consistency_level="Strong") if count else []
    rows: list[dict] = []
    iterator = client.query_iterator(collection_name=name, batch_size=batch, filter=expr, output_fields=fields,
                                     consistency_level="Strong")
    try:
        while chunk := iterator.next():
            rows.extend(chunk)
    finally:
        iterator.close()
    return rows
