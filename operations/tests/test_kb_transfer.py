"""Export one KB, empty every store, import it under another user: the same pages come back for the same search."""

import json
import zipfile

import pytest
from django.core.management import CommandError, call_command

from knowledge.documents import File, KnowledgeBase
from knowledge.search import search
from layra.mongo import reset_document_collections
from layra.storage import object_get
from tests.fixtures import _drop_milvus_collections, _drop_mongo_database, _empty_bucket, _empty_lexical_file
from tests.operators_helpers import ingest

pytestmark = pytest.mark.django_db
QUERIES = ["Emperor penguins polar winter", "spice trade revenue", "cloves nutmeg"]


def _pages(user, kb_id: str, query: str, mode: str = "hybrid") -> list[tuple[str, int]]:
    return [(h["filename"], h["page_number"]) for h in search(user=user, knowledge_base_ids=[kb_id], query=query,
                                                               top_k=3, mode=mode)]


def _empty_stack():
    _drop_mongo_database()
    _drop_milvus_collections()
    _empty_lexical_file()
    _empty_bucket()
    reset_document_collections()


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_export_import_into_an_empty_stack_finds_the_same_pages(user, other_user, django_capture_on_commit_callbacks,
                                                                 tmp_path, capsys):
    kb, files = ingest(user, django_capture_on_commit_callbacks)
    expected = {(q, mode): _pages(user, kb.knowledge_base_id, q, mode) for q in QUERIES
                for mode in ("hybrid", "dense", "lexical")}
    assert all(expected.values())
    archive = tmp_path / "kb.zip"
    call_command("kb_export", kb.knowledge_base_id, str(archive))
    exported = _last_json(capsys)
    assert exported["counts"] == {"files": 2, "pages": 3, "objects": 5, "vectors": exported["counts"]["vectors"],
                                  "lexical": 3}
    assert exported["counts"]["vectors"] >= 3

    _empty_stack()
    assert KnowledgeBase.objects.count() == 0

    call_command("kb_import", str(archive), "--user", other_user.username)
    imported = _last_json(capsys)
    assert imported["ok"] and imported["counts"] == exported["counts"]
    new_id = imported["knowledge_base_id"]
    assert new_id != kb.knowledge_base_id  # new ids, always (operations/kb_import.py)
    assert {(q, m): _pages(other_user, new_id, q, m) for (q, m) in expected} == expected
    new_files = list(File.objects(knowledge_db_id=new_id))
    assert {f.username for f in new_files} == {other_user.username}
    assert not {f.file_id for f in new_files} & {f.file_id for f in files}
    original = next(f for f in new_files if f.filename == "penguins.txt")
    assert object_get(key=original.minio_filename).startswith(b"Emperor penguins")
    call_command("check_consistency")  # exits 0 only when every KB agrees (SystemExit otherwise)

    # The same archive again, into the same deployment: a second KB beside the first, nothing shared.
    call_command("kb_import", str(archive), "--user", other_user.username)
    second = _last_json(capsys)["knowledge_base_id"]
    assert second != new_id and _pages(other_user, second, QUERIES[0]) == expected[(QUERIES[0], "hybrid")]
    assert _pages(other_user, new_id, QUERIES[0]) == expected[(QUERIES[0], "hybrid")]


def test_a_tampered_archive_is_refused_before_anything_is_written(user, django_capture_on_commit_callbacks,
                                                                   tmp_path):
    kb, _files = ingest(user, django_capture_on_commit_callbacks)
    archive, tampered = tmp_path / "kb.zip", tmp_path / "tampered.zip"
    call_command("kb_export", kb.knowledge_base_id, str(archive))
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data.replace(b"Emperor", b"Imposter") if item.filename == "lexical.jsonl" else data)
    before = KnowledgeBase.objects.count()
    with pytest.raises(CommandError, match="checksums"):
        call_command("kb_import", str(tampered), "--user", user.username)
    with pytest.raises(CommandError, match="No active user"):
        call_command("kb_import", str(archive), "--user", "nobody-here")
    assert KnowledgeBase.objects.count() == before
