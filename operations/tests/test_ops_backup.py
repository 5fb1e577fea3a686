"""Backup every store, wipe them all, restore into the empty stack: counts and a sample search come back equal."""

import json

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command

from knowledge.search import search
from layra.redis import redis_client
from layra.storage import object_keys, object_put
from operations.backup import MYSQL_EXCLUDE, restore_checksums, stack_is_empty, store_counts
from tests.fixtures import (
    _drop_milvus_collections,
    _drop_mongo_database,
    _empty_bucket,
    _empty_lexical_file,
    _flush_redis,
)
from tests.operators_helpers import ingest

pytestmark = pytest.mark.django_db


def _wipe_everything():
    for model in reversed(apps.get_models()):
        if not any(model._meta.label_lower.startswith(x) for x in MYSQL_EXCLUDE):
            model.objects.all().delete()
    _drop_mongo_database()
    _drop_milvus_collections()
    _empty_lexical_file()
    _empty_bucket()
    _flush_redis()
    from layra.mongo import reset_document_collections

    reset_document_collections()


def _redis_state() -> int:
    """Redis state that must survive a restore (a revoked token id with its TTL, a run's event list) and a lock
    that must not; returns the keys in the task db (the run's events and the ingestion jobs' progress)."""
    redis_client("token").set("token:revoked-jti", "revoked", ex=3600)
    redis_client("task").rpush("run-events:r1", "started", "finished")
    redis_client("lock").set("lock:ingest:f1", "owner", ex=3600)
    return redis_client("task").dbsize()


def _assert_redis_state_back():
    assert 3500 < redis_client("token").ttl("token:revoked-jti") <= 3600
    assert redis_client("task").lrange("run-events:r1", 0, -1) == ["started", "finished"]
    assert not redis_client("lock").exists("lock:ingest:f1")


def _assert_verified(report: dict, manifest: dict, task_keys: int):
    """The restore command's report: every count, checksum and the sample search agree with the backup."""
    assert report["counts_ok"] and report["checksums_ok"] and report["sample_ok"] is True
    assert report["files_verified"] == len(manifest["files"])
    assert report["counts"]["objects"] == {"expected": 5, "restored": 5}
    assert report["checksums"]["objects"] == {"checked": 5, "mismatched": []}
    assert report["checksums"]["mongo"] == {name: True for name in manifest["digests"]["mongo"]}
    assert report["checksums"]["milvus"] == {name: True for name in manifest["digests"]["milvus"]}
    assert report["redis"] == {"restored": {"token": 1, "task": task_keys}, "expired": {"token": 0, "task": 0}}


def test_backup_wipe_restore_round_trip(user, django_capture_on_commit_callbacks, tmp_path, capsys):
    kb, files = ingest(user, django_capture_on_commit_callbacks)
    kb_id = kb.knowledge_base_id
    query = "Emperor penguins polar winter"
    expected_hits = search(user=user, knowledge_base_ids=[kb_id], query=query, top_k=3)
    before = store_counts()
    assert before["milvus"] and before["objects"] == 5 and before["mongo"]["files"] == 2
    task_keys = _redis_state()

    target = tmp_path / "backup"
    call_command("backup", str(target), "--sample-user", user.username, "--sample-kb", kb_id,
                 "--sample-query", query)
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["counts"] == before
    assert {"mysql.json", "mongo/files.json", "mongo/knowledge_bases.json", "redis/token.jsonl",
            "redis/task.jsonl"} <= set(manifest["files"])
    assert manifest["redis"] == {"token": 1, "task": task_keys}
    assert set(manifest["digests"]["mongo"]) == set(before["mongo"])
    assert set(manifest["digests"]["milvus"]) == set(before["milvus"])
    assert [h[0] for h in manifest["sample"]["results"]] == [h["image_id"] for h in expected_hits]

    # A corrupted file is refused before anything is written.
    victim = target / "mongo" / "files.json"
    original = victim.read_bytes()
    victim.write_bytes(original + b"\n")
    with pytest.raises(Exception, match="checksums"):
        call_command("restore", str(target), "--dry-run")
    victim.write_bytes(original)
    with pytest.raises(Exception, match="not empty"):
        call_command("restore", str(target))

    _wipe_everything()
    assert stack_is_empty()
    capsys.readouterr()
    call_command("restore", str(target))
    _assert_verified(json.loads(capsys.readouterr().out.strip().splitlines()[-1]), manifest, task_keys)
    assert store_counts() == before
    _assert_redis_state_back()
    again = search(user=user, knowledge_base_ids=[kb_id], query=query, top_k=3)
    assert [h["image_id"] for h in again] == [h["image_id"] for h in expected_hits]
    call_command("check_consistency")  # exits 0 only when every KB agrees (SystemExit otherwise)

    # The checks can fail: a restored object changed behind the restore's back is reported by its key.
    key = sorted(object_keys())[0]
    object_put(key=key, data=b"tampered")
    checks = restore_checksums(manifest)
    assert not checks["ok"] and checks["objects"]["mismatched"] == [key]


def test_restore_refuses_a_backup_without_manifest(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises((FileNotFoundError, CommandError)):
        call_command("restore", str(tmp_path / "x"))
