"""Schema and index checks of vector collections (migration and rollback verify these, not only row counts)."""

from pymilvus import DataType, MilvusClient

from embeddings.collections import SCALAR_INDEXED

# The shared page collection as embeddings/collections.py makes it: field -> (type, is_primary, partition key).
SHARED_FIELDS = {
    "pk": (DataType.INT64, True, False),
    "vector": (DataType.FLOAT_VECTOR, False, False),
    "knowledge_base_id": (DataType.VARCHAR, False, True),
    "username": (DataType.VARCHAR, False, False),
    "file_id": (DataType.VARCHAR, False, False),
    "image_id": (DataType.VARCHAR, False, False),
    "page_number": (DataType.INT64, False, False),
}
VECTOR_INDEX = ("HNSW", "IP")


def index_descriptions(client: MilvusClient, name: str) -> list[dict]:
    """Each index of the collection: field_name, index_type, metric_type and its build parameters."""
    client.load_collection(collection_name=name)  # list_indexes may answer [] for a released collection
    return sorted((client.describe_index(collection_name=name, index_name=i)
                   for i in client.list_indexes(collection_name=name)), key=lambda d: d["field_name"])


def schema_fields(description: dict) -> dict[str, dict]:
    """{field: {type, primary, partition_key, params}} of a describe_collection answer (or its JSON copy)."""
    return {f["name"]: {"type": int(f["type"]), "primary": bool(f.get("is_primary")),
                        "partition_key": bool(f.get("is_partition_key")),
                        "params": {k: int(v) for k, v in (f.get("params") or {}).items()
                                   if k in ("dim", "max_length")}}
            for f in description["fields"]}


def index_summary(descriptions: list[dict]) -> dict[str, tuple]:
    """{field: (index_type, metric_type)}: what must match, ignoring server-side extras."""
    return {d["field_name"]: (d.get("index_type"), d.get("metric_type") or None) for d in descriptions}


def _field_problems(fields: dict[str, dict], dim: int) -> list[str]:
    problems = []
    for name, (dtype, primary, partition_key) in SHARED_FIELDS.items():
        found = fields.get(name)
        if found is None:
            problems.append(f"field {name} missing")
        elif (found["type"], found["primary"], found["partition_key"]) != (int(dtype), primary, partition_key):
            problems.append(f"field {name} is {found}, not {dtype.name} primary={primary} "
                            f"partition_key={partition_key}")
    if fields.get("vector", {}).get("params", {}).get("dim") not in (None, dim):
        problems.append(f"vector dim is {fields['vector']['params']['dim']}, not {dim}")
    return problems


def target_problems(client: MilvusClient, name: str, *, dim: int) -> list[str]:
    """What is wrong with a shared collection's schema and indexes ([] when it is as embeddings makes it)."""
    problems = _field_problems(schema_fields(client.describe_collection(collection_name=name)), dim)
    indexes = index_summary(index_descriptions(client, name))
    if indexes.get("vector") != VECTOR_INDEX:
        problems.append(f"vector index is {indexes.get('vector')}, not {VECTOR_INDEX}")
    missing = sorted(set(SCALAR_INDEXED) - set(indexes))
    if missing:
        problems.append(f"missing indexes on {missing}")
    return problems
