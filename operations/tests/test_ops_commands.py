"""reindex, cleanup, check_consistency and ensure_indexes on real stores."""

import pytest
from django.core.management import call_command

from embeddings.collections import dense_collection_name
from embeddings.embedders import embedder_spec
from knowledge.documents import File, KnowledgeBase
from knowledge.search import search
from layra.milvus import milvus_client
from layra.storage import object_keys, object_put, objects_delete
from operations.consistency import knowledge_base_check
from tests.operators_helpers import ingest

pytestmark = pytest.mark.django_db


def _name():
    spec = embedder_spec()
    return dense_collection_name(embedder=spec.name, dim=spec.dim)


def _rows(kb_id):
    return milvus_client().query(collection_name=_name(), filter=f'knowledge_base_id == "{kb_id}"',
                                 output_fields=["image_id", "file_id"], limit=16384, consistency_level="Strong")


def _consistency(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        call_command("check_consistency", *args)
        raise SystemExit(0)
    return exc.value.code, capsys.readouterr().out


def test_broken_state_is_reported_and_repaired(user, django_capture_on_commit_callbacks, capsys):
    kb, files = ingest(user, django_capture_on_commit_callbacks)
    kb_id = kb.knowledge_base_id
    code, out = _consistency(capsys)
    assert code == 0 and "0 inconsistent" in out, out
    pdf = next(f for f in files if f.filename == "spices.pdf")
    txt = next(f for f in files if f.filename == "penguins.txt")
    before = len(_rows(kb_id))

    # Break it: vectors of one page gone, one page image gone, an orphan object, vectors of a vanished file.
    client = milvus_client()
    name = _name()
    client.delete(collection_name=name, filter=f'image_id == "{pdf.images[0].images_id}"')
    objects_delete(keys=[txt.images[0].minio_filename])
    orphan = f"{user.username}/{kb_id}/{'0' * 8}-0000-0000-0000-000000000000/original"
    object_put(key=orphan, data=b"junk")
    client.insert(collection_name=name, data=[{"vector": list(_rows_vector(kb_id)), "knowledge_base_id": kb_id,
                                               "username": user.username, "image_id": "ghost", "page_number": 1,
                                               "file_id": "ghost-file"}])

    report = knowledge_base_check(knowledge_base_id=kb_id)
    assert report.pages_without_vectors == [pdf.images[0].images_id]
    assert report.vectors_without_page == ["ghost"]
    assert report.missing_objects == [txt.images[0].minio_filename]
    assert report.orphan_objects == [orphan]
    code, out = _consistency(capsys, "--kb", kb_id)
    assert code == 1 and "BAD" in out and "1 inconsistent" in out

    call_command("cleanup", "--dry-run")
    assert "dry run" in capsys.readouterr().out
    assert not knowledge_base_check(knowledge_base_id=kb_id).ok  # dry run changed nothing

    with django_capture_on_commit_callbacks(execute=True):
        call_command("cleanup")
    out = capsys.readouterr().out
    assert "orphan_vectors: fixed 1" in out and "orphan_objects: fixed 1" in out
    assert "missing_vectors: fixed 1" in out and "missing_objects: fixed 1" in out
    report = knowledge_base_check(knowledge_base_id=kb_id)
    assert report.ok, report.as_dict()
    assert File.objects.get(file_id=txt.file_id).status == "completed"  # re-ingested from its original
    assert len(_rows(kb_id)) == before
    code, _ = _consistency(capsys)
    assert code == 0
    assert search(user=user, knowledge_base_ids=[kb_id], query="penguins polar winter", top_k=1)[0]["file_id"] \
        == txt.file_id


def _rows_vector(kb_id):
    client = milvus_client()
    row = client.query(collection_name=_name(), filter=f'knowledge_base_id == "{kb_id}"',
                       output_fields=["vector"], limit=1, consistency_level="Strong")[0]
    return row["vector"]


def test_reindex_file_kb_user_and_embedder_switch(user, django_capture_on_commit_callbacks, capsys):
    kb, files = ingest(user, django_capture_on_commit_callbacks)
    kb_id = kb.knowledge_base_id
    rows = sorted(r["image_id"] for r in _rows(kb_id))
    version = kb.version

    call_command("reindex", "--kb", kb_id, "--dry-run")
    assert "[dry run] would reindex 1 knowledge bases, 2 files, 3 pages" in capsys.readouterr().out
    kb.reload()
    assert kb.version == version

    call_command("reindex", "--file", files[0].file_id)
    call_command("reindex", "--user", user.username)
    call_command("reindex", "--all")
    assert "Reindexed 1 knowledge bases, 2 files, 3 pages" in capsys.readouterr().out
    assert sorted(r["image_id"] for r in _rows(kb_id)) == rows  # replaced, never appended

    call_command("reindex", "--kb", kb_id, "--embedder", "minilm")  # the KB's own embedder: replaced in place
    assert "switched: 0" in capsys.readouterr().out
    assert sorted(r["image_id"] for r in _rows(kb_id)) == rows
    kb.reload()
    assert kb.version > version and kb.embedder.startswith("minilm:")
    hits = search(user=user, knowledge_base_ids=[kb_id], query="Zanzibar cloves nutmeg", top_k=1)
    assert hits and hits[0]["file_id"] == next(f.file_id for f in files if f.filename == "spices.pdf")


def test_cleanup_purges_soft_deleted_temp_kbs_and_progress_keys(user, django_capture_on_commit_callbacks, capsys):
    from knowledge.documents import KnowledgeBase
    from knowledge.services import knowledge_base_create
    from layra.redis import redis_client

    kb, files = ingest(user, django_capture_on_commit_callbacks)
    KnowledgeBase.objects(knowledge_base_id=kb.knowledge_base_id).update_one(set__is_delete=True)
    File.objects(knowledge_db_id=kb.knowledge_base_id).update(set__is_delete=True)
    temp = knowledge_base_create(user=user, name="tmp", is_temp=True, conversation_id="gone-conversation")
    redis = redis_client("task")
    redis.hset("task:no-such-job", mapping={"status": "queued"})
    for i in range(3):
        redis.hset(f"other:{i}", mapping={"x": 1})

    call_command("cleanup", "--older-than-days", "0", "--step", "soft_deleted", "--step", "temp_knowledge_bases",
                 "--step", "progress_keys")
    out = capsys.readouterr().out
    assert "trash: fixed 1" in out and "temp_knowledge_bases: fixed 1" in out  # soft_deleted: its older name
    assert "progress_keys: fixed 1" in out
    assert not KnowledgeBase.objects(knowledge_base_id__in=[kb.knowledge_base_id, temp.knowledge_base_id]).count()
    assert not File.objects(knowledge_db_id=kb.knowledge_base_id).count()
    assert not list(object_keys(prefix=f"kb/{kb.knowledge_base_id}/"))
    assert _rows(kb.knowledge_base_id) == []
    assert not redis.exists("task:no-such-job") and redis.exists("other:0")


def test_ensure_indexes_creates_missing_ones(user, django_capture_on_commit_callbacks, capsys):
    kb, _ = ingest(user, django_capture_on_commit_callbacks, docs={"a.txt": b"alpha beta gamma"})
    name = _name()
    client = milvus_client()
    client.release_collection(collection_name=name)
    index = next(i for i in client.list_indexes(collection_name=name)
                 if client.describe_index(collection_name=name, index_name=i)["field_name"] == "file_id")
    client.drop_index(collection_name=name, index_name=index)
    File._get_collection().drop_indexes()
    call_command("ensure_indexes")
    out = capsys.readouterr().out
    assert "Milvus: 1 collections" in out and "0 indexes created" not in out
    assert "file_id" in {client.describe_index(collection_name=name, index_name=i)["field_name"]
                         for i in client.list_indexes(collection_name=name)}
    assert len(File._get_collection().index_information()) > 1


def test_documents_make_no_collection_or_index_on_first_use(user):
    """Collections and indexes come from ensure_indexes (the deploy step), never from a process's first write:
    that DDL raced live writes at every process start, and SecantusDB deadlocked on it."""
    from knowledge.services import knowledge_base_create
    from layra.mongo import database, reset_document_collections

    db = database()
    db.client.drop_database(db.name)
    reset_document_collections()  # as in a process that has not touched the collections yet
    knowledge_base_create(user=user, name="first write")
    collection = db[KnowledgeBase._get_collection_name()]
    assert list(collection.index_information()) == ["_id_"]

    call_command("ensure_indexes", verbosity=0)
    indexes = collection.index_information()
    assert len(indexes) > 1 and any(spec.get("unique") for spec in indexes.values())
    assert File._get_collection_name() in db.list_collection_names()
