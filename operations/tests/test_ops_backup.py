"""Backup every store, wipe them all, restore into the empty stack: counts and a sample search come back equal."""

import json

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command

from knowledge.search import search
from operations.backup import MYSQL_EXCLUDE, stack_is_empty, store_counts
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


def test_backup_wipe_restore_round_trip(user, django_capture_on_commit_callbacks, tmp_path, capsys):
    kb, files = ingest(user, django_capture_on_commit_callbacks)
    kb_id = kb.knowledge_base_id
    query = "Emperor penguins polar winter"
    expected_hits = search(user=user, knowledge_base_ids=[kb_id], query=query, top_k=3)
    before = store_counts()
    assert before["milvus"] and before["objects"] == 5 and before["mongo"]["files"] == 2

    target = tmp_path / "backup"
    call_command("backup", str(target), "--sample-user", user.username, "--sample-kb", kb_id,
                 "--sample-query", query)
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["counts"] == before
    assert {"mysql.json", "mongo/files.json", "mongo/knowledge_bases.json"} <= set(manifest["files"])
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
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"counts_ok": True, "sample_ok": True}
    assert store_counts() == before
    again = search(user=user, knowledge_base_ids=[kb_id], query=query, top_k=3)
    assert [h["image_id"] for h in again] == [h["image_id"] for h in expected_hits]
    call_command("check_consistency")  # exits 0 only when every KB agrees (SystemExit otherwise)


def test_restore_refuses_a_backup_without_manifest(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises((FileNotFoundError, CommandError)):
        call_command("restore", str(tmp_path / "x"))
