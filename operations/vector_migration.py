"""Move per-KB vector collections (`colqwen{kb}`, schema versions 1-2) into the shared per-embedder ones.

For each legacy collection: its rows are copied into `layra_pages_{embedder}_{dim}` with the KB id (partition
key) and owner, the copy is verified (row count of that KB, a content digest of its rows against the old
collection's, the target's schema and indexes: operations/vector_schema.py), the embedder moves into the KB's
metadata, the KB's lexical rows are built from Mongo, and only then is the old collection dropped. A failure
leaves the old collection in place and a rerun starts that KB again from an empty copy.

The backup info written before any change records each collection's schema, index parameters, row count,
content digest and the KB's embedder before, and the run's outcome is added to it afterwards: that is what
`migrate_vectors --rollback` rebuilds the last migration's collections from (operations/vector_rollback.py).
"""

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pymilvus import MilvusClient

from embeddings.collections import dense_collection_ensure, filter_quote, rows_count
from embeddings.services import embedder_tag, vectors_delete_knowledge_base
from knowledge.documents import KnowledgeBase
from knowledge.invalidation import kb_version_bump
from layra.errors import Conflict
from layra.milvus import milvus_client
from operations.checksums import milvus_digest
from operations.reindex import lexical_backfill
from operations.vector_schema import index_descriptions, target_problems

LEGACY_PREFIX = "colqwen"
COPY_BATCH = 4000
LEGACY_ROW_FIELDS = ["file_id", "image_id", "page_number", "vector"]  # what a legacy row holds besides its pk


class MigrationState(StrEnum):
    PENDING = "pending"
    MIGRATED = "migrated"
    ORPHAN = "orphan"  # no KB
    FAILED = "failed"


@dataclass
class LegacyCollection:
    collection: str
    knowledge_base_id: str
    username: str | None
    embedder: str | None
    dim: int
    count: int
    indexes: list[str] = field(default_factory=list)
    target: str | None = None
    copied: int = 0
    state: MigrationState = MigrationState.PENDING
    kb_embedder: str | None = None  # the KB's recorded embedder before the migration (rollback sets it back)
    digest: str | None = None  # content digest of the legacy rows (operations/checksums.py), taken before


def _legacy_names(client: MilvusClient) -> list[str]:
    return sorted(n for n in client.list_collections() if n.startswith(LEGACY_PREFIX))


def _count(client: MilvusClient, name: str, expr: str = "") -> int:
    client.load_collection(collection_name=name)
    return rows_count(client, name, expr=expr)


def _describe(client: MilvusClient, name: str) -> LegacyCollection:
    desc = client.describe_collection(collection_name=name)
    try:
        info = json.loads(desc.get("description") or "{}")
    except ValueError:
        info = {}
    dim = next((int(f.get("params", {}).get("dim", 0)) for f in desc.get("fields", []) if f.get("name") == "vector"),
               int(info.get("dim") or 0))
    kb_id = name[len(LEGACY_PREFIX):].replace("_", "-")
    kb = KnowledgeBase.objects(knowledge_base_id=kb_id).first()
    embedder = info.get("embedder") or (desc.get("properties") or {}).get("layra.embedder")
    return LegacyCollection(collection=name, knowledge_base_id=kb_id, username=kb.username if kb else None,
                            embedder=embedder, dim=dim, count=_count(client, name),
                            indexes=list(client.list_indexes(collection_name=name)),
                            state=MigrationState.PENDING if kb else MigrationState.ORPHAN,
                            kb_embedder=kb.embedder if kb else None)


def migration_plan() -> list[LegacyCollection]:
    client = milvus_client()
    return [_describe(client, name) for name in _legacy_names(client)]


def _copy(client: MilvusClient, item: LegacyCollection, target: str) -> int:
    copied = 0
    iterator = client.query_iterator(collection_name=item.collection, batch_size=COPY_BATCH, filter="pk >= 0",
                                     output_fields=["vector", "image_id", "page_number", "file_id"],
                                     consistency_level="Strong")
    try:
        while rows := iterator.next():
            client.insert(collection_name=target, data=[{
                "vector": r["vector"], "image_id": r["image_id"], "page_number": int(r["page_number"]),
                "file_id": r["file_id"], "knowledge_base_id": item.knowledge_base_id, "username": item.username,
            } for r in rows])
            copied += len(rows)
    finally:
        iterator.close()
    return copied


def legacy_digest(item: LegacyCollection) -> str:
    return milvus_digest(item.collection, fields=LEGACY_ROW_FIELDS)


def _verify_copy(client: MilvusClient, item: LegacyCollection, target: str) -> None:
    kb_filter = f"knowledge_base_id == {filter_quote(item.knowledge_base_id)}"
    in_target = _count(client, target, kb_filter)
    problems = target_problems(client, target, dim=item.dim)
    if item.copied != item.count or in_target != item.count:
        problems.append(f"{item.count} rows, {item.copied} copied, {in_target} in {target}")
    elif milvus_digest(target, expr=kb_filter, fields=LEGACY_ROW_FIELDS) != item.digest:
        problems.append(f"the rows in {target} differ from the old collection's (content digest)")
    if problems:
        item.state = MigrationState.FAILED
        raise Conflict(f"{item.collection}: " + "; ".join(problems) + ". The old collection is kept.")


def migrate_one(item: LegacyCollection) -> LegacyCollection:
    client = milvus_client()
    if not item.embedder or not item.dim:
        item.state = MigrationState.FAILED
        raise Conflict(f"{item.collection}: no embedder recorded; re-index this knowledge base instead.")
    # A rerun after a failure starts the KB's copy afresh (no duplicate rows).
    vectors_delete_knowledge_base(knowledge_base_id=item.knowledge_base_id, embedder=item.embedder, dim=item.dim)
    target = dense_collection_ensure(embedder=item.embedder, dim=item.dim, client=client)
    item.target = target
    item.digest = item.digest or legacy_digest(item)
    item.copied = _copy(client, item, target)
    _verify_copy(client, item, target)
    kb_version_bump(knowledge_base_id=item.knowledge_base_id,
                    embedder=embedder_tag(embedder=item.embedder, dim=item.dim))
    lexical_backfill(knowledge_base_ids=[item.knowledge_base_id])
    client.drop_collection(collection_name=item.collection)
    item.state = MigrationState.MIGRATED
    return item


def backup_info_write(plan: list[LegacyCollection], directory: Path) -> Path:
    """What is about to change (collections, counts, digests, schema, index parameters), written before any
    change."""
    client = milvus_client()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"backup-info-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.json"
    for item in plan:
        if item.state == MigrationState.PENDING:
            item.digest = legacy_digest(item)
    path.write_text(json.dumps({
        "created_at": datetime.now(UTC).isoformat(),
        "collections": [{**asdict(p), "schema": client.describe_collection(collection_name=p.collection),
                         "index_params": index_descriptions(client, p.collection)} for p in plan],
    }, default=str, indent=1))
    return path


def backup_info_record_outcome(path: Path, done: list[LegacyCollection]) -> None:
    """Add each collection's outcome (state, target) to the backup info: rollback undoes the migrated ones."""
    info = json.loads(path.read_text())
    outcome = {item.collection: item for item in done}
    for entry in info["collections"]:
        if entry["collection"] in outcome:
            entry.update(state=outcome[entry["collection"]].state, target=outcome[entry["collection"]].target,
                         copied=outcome[entry["collection"]].copied)
    info["finished_at"] = datetime.now(UTC).isoformat()
    path.write_text(json.dumps(info, default=str, indent=1))
