import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from pymilvus import DataType, MilvusClient

from embeddings.collections import SCALAR_INDEXED, dense_collection_name, scalar_index_type
from embeddings.lexical import lexical_index
from knowledge.documents import KnowledgeBase
from knowledge.search import search
from knowledge.services import knowledge_base_create
from layra.milvus import milvus_client
from operations.checksums import milvus_digest
from operations.vector_schema import index_descriptions, index_summary, schema_fields
from tests.knowledge_helpers import index_pages


def _legacy_collection(kb_id: str, rows: int, dim: int, *, pages: list[str]) -> str:
    """A collection as an older release made it: one per KB, no KB field, the embedder in its description."""
    client = milvus_client()
    name = "colqwen" + kb_id.replace("-", "_")
    schema = MilvusClient.create_schema(auto_id=True, description=json.dumps({"embedder": "minilm", "dim": dim}))
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("image_id", DataType.VARCHAR, max_length=64)
    schema.add_field("page_number", DataType.INT64)
    schema.add_field("file_id", DataType.VARCHAR, max_length=64)
    params = client.prepare_index_params()
    params.add_index(field_name="vector", index_type="HNSW", metric_type="IP", params={"M": 32, "efConstruction": 500})
    client.create_collection(collection_name=name, schema=schema, index_params=params)
    v = np.random.default_rng(0).standard_normal((rows, dim)).astype(np.float32)
    client.insert(collection_name=name, data=[{"vector": r.tolist(), "image_id": pages[k % len(pages)],
                                               "page_number": k % len(pages) + 1, "file_id": "f"}
                                              for k, r in enumerate(v)])
    return name


def test_dry_run_then_move_into_the_shared_collection(tmp_path, capsys, user):
    kb = knowledge_base_create(user=user, name="Old")
    other = knowledge_base_create(user=user, name="Already shared")
    index_pages(user=user, knowledge_base_id=other.knowledge_base_id, texts=["kept as it is"])
    file_id = index_pages(user=user, knowledge_base_id=kb.knowledge_base_id, texts=["alpha page", "beta page"])
    # Make the KB look as an older release left it: vectors in its own collection, nothing shared, no metadata.
    from embeddings.services import file_index_delete

    file_index_delete(knowledge_base_id=kb.knowledge_base_id, file_id=file_id)
    KnowledgeBase.objects(knowledge_base_id=kb.knowledge_base_id).update_one(set__embedder=None)
    legacy = _legacy_collection(kb.knowledge_base_id, 12, 384, pages=[f"{file_id}-p1", f"{file_id}-p2"])
    _legacy_collection("0000-gone", 3, 384, pages=["x"])  # its KB no longer exists

    call_command("migrate_vectors", "--dry-run", "--backup-dir", str(tmp_path))
    out = json.loads(capsys.readouterr().out)
    assert out["to_migrate"] == 1 and out["orphans"] == ["colqwen0000_gone"]
    assert next(p for p in out["plan"] if p["collection"] == legacy)["count"] == 12
    assert list(tmp_path.iterdir()) == [] and milvus_client().has_collection(legacy)  # nothing changed

    call_command("migrate_vectors", "--backup-dir", str(tmp_path))
    out = json.loads(capsys.readouterr().out)
    target = dense_collection_name(embedder="minilm", dim=384)
    assert out["migrated"] == [{"collection": legacy, "target": target, "rows": 12}]
    backup = json.loads(next(tmp_path.iterdir()).read_text())
    assert {c["collection"]: c["count"] for c in backup["collections"]}[legacy] == 12
    assert not milvus_client().has_collection(legacy)
    counts = milvus_client().query(collection_name=target, filter=f'knowledge_base_id == "{kb.knowledge_base_id}"',
                                   output_fields=["count(*)"], consistency_level="Strong")
    assert counts[0]["count(*)"] == 12
    assert KnowledgeBase.objects.get(knowledge_base_id=kb.knowledge_base_id).embedder == "minilm:384"
    assert set(lexical_index().page_ids(knowledge_base_id=kb.knowledge_base_id)) == {f"{file_id}-p1",
                                                                                    f"{file_id}-p2"}
    assert search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="beta", mode="lexical")
    assert search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="beta", mode="dense")

    call_command("migrate_vectors", "--backup-dir", str(tmp_path))  # only the orphan is left: nothing to do
    assert json.loads(capsys.readouterr().out)["to_migrate"] == 0


def _legacy_kb(user, name="Old") -> tuple[str, str]:
    """A KB whose 12 vectors sit in a per-KB collection as an older release left them: (kb id, collection)."""
    from embeddings.services import file_index_delete

    kb = knowledge_base_create(user=user, name=name)
    file_id = index_pages(user=user, knowledge_base_id=kb.knowledge_base_id, texts=["alpha page", "beta page"])
    file_index_delete(knowledge_base_id=kb.knowledge_base_id, file_id=file_id)
    KnowledgeBase.objects(knowledge_base_id=kb.knowledge_base_id).update_one(set__embedder=None)
    return kb.knowledge_base_id, _legacy_collection(kb.knowledge_base_id, 12, 384,
                                                    pages=[f"{file_id}-p1", f"{file_id}-p2"])


def _kb_rows(name: str, kb_id: str) -> int:
    return milvus_client().query(collection_name=name, filter=f'knowledge_base_id == "{kb_id}"',
                                 output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]


def test_rollback_rebuilds_the_last_migrations_collections(tmp_path, capsys, user):
    kb_id, legacy = _legacy_kb(user)
    client = milvus_client()
    fields = ["file_id", "image_id", "page_number", "vector"]
    before = (schema_fields(client.describe_collection(collection_name=legacy)),
              index_summary(index_descriptions(client, legacy)), milvus_digest(legacy, fields=fields))
    call_command("migrate_vectors", "--backup-dir", str(tmp_path))
    target = json.loads(capsys.readouterr().out)["migrated"][0]["target"]
    assert not client.has_collection(legacy) and _kb_rows(target, kb_id) == 12

    call_command("migrate_vectors", "--rollback", "--backup-dir", str(tmp_path))
    out = json.loads(capsys.readouterr().out)
    assert out["rolled_back"] == [{"collection": legacy, "rows": 12, "from": target}] and out["failed"] == []
    # The collection is back as it was: schema, indexes and every row's content; the shared rows are gone.
    assert (schema_fields(client.describe_collection(collection_name=legacy)),
            index_summary(index_descriptions(client, legacy)), milvus_digest(legacy, fields=fields)) == before
    assert _kb_rows(target, kb_id) == 0
    assert KnowledgeBase.objects.get(knowledge_base_id=kb_id).embedder is None
    with pytest.raises(CommandError, match="rolled back already"):
        call_command("migrate_vectors", "--rollback", "--backup-dir", str(tmp_path))

    call_command("migrate_vectors", "--backup-dir", str(tmp_path))  # and forward again
    assert json.loads(capsys.readouterr().out)["migrated"] == [{"collection": legacy, "target": target, "rows": 12}]


def test_a_target_with_the_wrong_schema_is_refused(tmp_path, capsys, user):
    # A shared collection made by hand without the partition key: every count would match, the layout not.
    client = milvus_client()
    target = dense_collection_name(embedder="minilm", dim=384)
    schema = MilvusClient.create_schema(auto_id=True)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=384)
    for name in ("knowledge_base_id", "username", "file_id", "image_id"):
        schema.add_field(name, DataType.VARCHAR, max_length=150)
    schema.add_field("page_number", DataType.INT64)
    params = client.prepare_index_params()
    params.add_index(field_name="vector", index_type="HNSW", metric_type="IP", params={"M": 8, "efConstruction": 64})
    for name in SCALAR_INDEXED:
        params.add_index(field_name=name, index_type=scalar_index_type(client))
    client.create_collection(collection_name=target, schema=schema, index_params=params)
    kb_id, legacy = _legacy_kb(user)

    with pytest.raises(CommandError, match="1 collections not migrated"):
        call_command("migrate_vectors", "--backup-dir", str(tmp_path))
    out = json.loads(capsys.readouterr().out)
    assert "field knowledge_base_id" in out["failed"][0] and "partition_key=True" in out["failed"][0]
    assert client.has_collection(legacy)  # kept
