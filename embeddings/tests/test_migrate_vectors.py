import json

import numpy as np
from django.core.management import call_command
from pymilvus import DataType, MilvusClient

from embeddings.services import collection_info
from layra.milvus import milvus_client


def _old_collection(name: str, rows: int) -> None:
    """A version-1 collection as an older release made it: no scalar indexes, no version property."""
    client = milvus_client()
    schema = MilvusClient.create_schema(auto_id=True, description=json.dumps({"embedder": "minilm", "dim": 8}))
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=8)
    schema.add_field("image_id", DataType.VARCHAR, max_length=64)
    schema.add_field("page_number", DataType.INT64)
    schema.add_field("file_id", DataType.VARCHAR, max_length=64)
    params = client.prepare_index_params()
    params.add_index(field_name="vector", index_type="HNSW", metric_type="IP", params={"M": 32, "efConstruction": 500})
    client.create_collection(collection_name=name, schema=schema, index_params=params)
    v = np.random.default_rng(0).standard_normal((rows, 8)).astype(np.float32)
    client.insert(collection_name=name, data=[{"vector": r.tolist(), "image_id": f"i{k}", "page_number": 1,
                                               "file_id": "f"} for k, r in enumerate(v)])


def _fields(name):
    client = milvus_client()
    return {client.describe_index(collection_name=name, index_name=i)["field_name"]
            for i in client.list_indexes(collection_name=name)}


def test_dry_run_then_apply(tmp_path, capsys):
    _old_collection("colqwenold_kb", 12)
    assert collection_info(name="colqwenold_kb")["schema_version"] == 1

    call_command("migrate_vectors", "--dry-run", "--backup-dir", str(tmp_path))
    out = json.loads(capsys.readouterr().out)
    assert out["to_migrate"] == 1 and out["plan"][0]["pending"] == [2] and out["plan"][0]["count"] == 12
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing changed
    assert _fields("colqwenold_kb") == {"vector"}

    call_command("migrate_vectors", "--backup-dir", str(tmp_path))
    out = json.loads(capsys.readouterr().out)
    assert out["applied"] == [{"collection": "colqwenold_kb", "version": 2}]
    backup = json.loads(next(tmp_path.iterdir()).read_text())
    assert backup["collections"][0]["count"] == 12 and backup["collections"][0]["version"] == 1
    assert {"vector", "file_id", "image_id"} <= _fields("colqwenold_kb")
    assert collection_info(name="colqwenold_kb")["schema_version"] == 2

    call_command("migrate_vectors", "--backup-dir", str(tmp_path))  # nothing left to do
    assert json.loads(capsys.readouterr().out)["to_migrate"] == 0
