"""Undo the last `migrate_vectors` run from its backup info: rebuild each migrated per-KB collection.

For each collection the run migrated: the collection is made again with its recorded schema and index
parameters, the KB's rows are copied back out of the shared collection, and the copy is verified against the
backup info (row count, the content digest taken before the migration, schema fields, indexes). Only then are
the KB's rows deleted from the shared collection and its recorded embedder set back. A failure drops the
half-made collection and leaves the shared rows, so the KB stays searchable and a rerun starts afresh.
Lexical rows the migration built are left: they are derived from Mongo and match the KB's pages either way.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

from pymilvus import DataType, MilvusClient

from embeddings.collections import filter_quote, rows_matching
from embeddings.services import vectors_delete_knowledge_base
from knowledge.invalidation import kb_version_bump
from layra.errors import Conflict, NotFound
from layra.milvus import milvus_client
from operations.checksums import milvus_digest
from operations.vector_migration import COPY_BATCH, LEGACY_ROW_FIELDS, MigrationState
from operations.vector_schema import index_descriptions, index_summary, schema_fields

INDEX_DESCRIPTION_KEYS = ("field_name", "index_name", "index_type", "metric_type", "total_rows", "indexed_rows",
                          "pending_index_rows", "state")


def last_backup_info(directory: Path) -> Path:
    infos = sorted(directory.glob("backup-info-*.json"))
    if not infos:
        raise NotFound(f"No migration backup info in {directory}.")
    return infos[-1]


def _recreate(client: MilvusClient, entry: dict) -> None:
    recorded = entry["schema"]
    schema = MilvusClient.create_schema(auto_id=bool(recorded.get("auto_id")),
                                        enable_dynamic_field=bool(recorded.get("enable_dynamic_field")),
                                        description=recorded.get("description") or "")
    for name, spec in schema_fields(recorded).items():
        schema.add_field(name, DataType(spec["type"]), is_primary=spec["primary"],
                         is_partition_key=spec["partition_key"], **spec["params"])
    params = client.prepare_index_params()
    for index in entry["index_params"]:
        params.add_index(field_name=index["field_name"], index_name=index.get("index_name", index["field_name"]),
                         index_type=index["index_type"], metric_type=index.get("metric_type") or "",
                         params={k: v for k, v in index.items() if k not in INDEX_DESCRIPTION_KEYS})
    client.create_collection(collection_name=entry["collection"], schema=schema, index_params=params)


def _copy_back(client: MilvusClient, entry: dict) -> int:
    fields = [f for f in schema_fields(entry["schema"]) if f in LEGACY_ROW_FIELDS]
    rows = rows_matching(client, entry["target"], fields=fields,
                         expr=f"knowledge_base_id == {filter_quote(entry['knowledge_base_id'])}")
    for start in range(0, len(rows), COPY_BATCH):
        client.insert(collection_name=entry["collection"],
                      data=[{f: r[f] for f in fields} for r in rows[start:start + COPY_BATCH]])
    return len(rows)


def _verify(client: MilvusClient, entry: dict, copied: int) -> list[str]:
    name = entry["collection"]
    problems = []
    if copied != entry["count"]:
        problems.append(f"{copied} rows copied back, {entry['count']} before the migration")
    elif entry.get("digest") and milvus_digest(name, fields=LEGACY_ROW_FIELDS) != entry["digest"]:
        problems.append("rows differ from the collection's before the migration (content digest)")
    if schema_fields(client.describe_collection(collection_name=name)) != schema_fields(entry["schema"]):
        problems.append("schema differs from the recorded one")
    if index_summary(index_descriptions(client, name)) != index_summary(entry["index_params"]):
        problems.append("indexes differ from the recorded ones")
    return problems


def rollback_one(entry: dict) -> dict:
    client = milvus_client()
    name = entry["collection"]
    if client.has_collection(collection_name=name):
        raise Conflict(f"{name} exists already; nothing to roll back for it.")
    _recreate(client, entry)
    copied = _copy_back(client, entry)
    problems = _verify(client, entry, copied)
    if problems:
        client.drop_collection(collection_name=name)
        raise Conflict(f"{name}: " + "; ".join(problems) + ". The shared rows are kept.")
    embedder, dim = entry["embedder"], int(entry["dim"])
    vectors_delete_knowledge_base(knowledge_base_id=entry["knowledge_base_id"], embedder=embedder, dim=dim)
    kb_version_bump(knowledge_base_id=entry["knowledge_base_id"], embedder=entry.get("kb_embedder"))
    return {"collection": name, "rows": copied, "from": entry["target"]}


def migration_rollback(*, directory: Path) -> dict:
    """Roll back the last run recorded in `directory`; returns {"backup_info", "rolled_back", "failed"}."""
    path = last_backup_info(directory)
    info = json.loads(path.read_text())
    if info.get("rolled_back_at"):
        raise Conflict(f"The last migration ({path.name}) was rolled back already.")
    done, failed = [], []
    for entry in info["collections"]:
        if entry.get("state") != MigrationState.MIGRATED:
            continue
        try:
            done.append(rollback_one(entry))
        except Conflict as exc:
            failed.append(exc.message)
    if not failed:
        info["rolled_back_at"] = datetime.now(UTC).isoformat()
        path.write_text(json.dumps(info, default=str, indent=1))
    return {"backup_info": str(path), "rolled_back": done, "failed": failed}
