"""The trash of knowledge bases and files on the real stores, on both index stacks: a delete hides at once from
lists and from the dense and lexical sides of search, keeps vectors, page images and objects; a restore gives back
the same search results; a purge leaves nothing in any store."""

import pytest

from embeddings.lexical import lexical_index
from knowledge import samples
from knowledge.documents import File, KnowledgeBase
from knowledge.models import IngestionJob
from knowledge.services import knowledge_base_create
from operations.consistency import consistency_check
from tests.knowledge_helpers import bucket_keys, file_vectors, upload_url, uploaded

MODES = ("hybrid", "dense", "lexical")
QUERY = "volcanoes erupt basalt lava"


def _upload(client, capture, kb_id, files, **fields):
    with capture(execute=True):
        response = client.post(upload_url(kb_id), {"files": files, **fields}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def _hits(client, kb_ids, mode="hybrid", query=QUERY, top_k=6):
    response = client.post("/api/v1/search/", {"query": query, "knowledge_base_ids": kb_ids, "top_k": top_k,
                                               "mode": mode}, format="json")
    assert response.status_code == 200, response.content
    return [(h["file_id"], h["page_number"], h["score"]) for h in response.json()["results"]]


def _same(before, after):
    assert [(f, p) for f, p, _ in after] == [(f, p) for f, p, _ in before]
    assert [s for _, _, s in after] == pytest.approx([s for _, _, s in before], rel=1e-3)


@pytest.fixture
def corpus(api_client, user, django_capture_on_commit_callbacks):
    kb = knowledge_base_create(user=user, name="Atlas")
    kb_id = kb.knowledge_base_id
    body = _upload(api_client, django_capture_on_commit_callbacks, kb_id, [
        uploaded("land.pdf", samples.make_pdf(["Volcanoes erupt basalt lava near the rift",
                                               "Glaciers carve deep fjords into the coast"])),
        uploaded("iceland.pdf", samples.make_pdf(["Icelandic volcanoes erupt basalt lava under the glaciers"])),
    ])
    land, iceland = body[0]["file_id"], body[1]["file_id"]
    for item in body:
        assert IngestionJob.objects.get(task_id=item["task_id"]).state == "completed"
    return kb_id, land, iceland


def test_a_trashed_file_leaves_search_at_once_keeps_its_stores_and_comes_back_identical(
    index_stack, api_client, user, corpus
):
    kb_id, land, iceland = corpus
    before = {mode: _hits(api_client, [kb_id], mode) for mode in MODES}
    assert all(iceland in {f for f, _, _ in hits} for hits in before.values())
    keys = bucket_keys(f"kb/{kb_id}/{iceland}/")
    vectors = file_vectors(kb_id, iceland)
    assert vectors and len(keys) == 2  # the original and its page image

    assert api_client.delete(f"/api/v1/files/{iceland}/").status_code == 204
    for mode in MODES:
        hits = _hits(api_client, [kb_id], mode)
        assert hits and {f for f, _, _ in hits} == {land}, (mode, hits)
        # left out inside the dense and lexical searches, not after top-k: the best page is still there
        best = _hits(api_client, [kb_id], mode, query="Icelandic volcanoes under the glaciers", top_k=1)
        assert [f for f, _, _ in best] == [land], (mode, best)
    assert api_client.get(f"/api/v1/files/{iceland}/").status_code == 404
    assert [f["file_id"] for f in api_client.get(f"/api/v1/knowledge-bases/{kb_id}/files/").json()["results"]] == [
        land]
    assert api_client.get(f"/api/v1/knowledge-bases/{kb_id}/").json()["file_count"] == 1
    trash = api_client.get("/api/v1/trash/").json()
    assert trash["count"] == 1
    item = trash["results"][0]
    assert (item["kind"], item["id"], item["name"], item["knowledge_base_id"]) == (
        "file", iceland, "iceland.pdf", kb_id)
    assert item["deleted_at"] and item["purge_after"] > item["deleted_at"]
    # untouched while in the trash: vectors, text rows, page images, original; and the stores agree
    assert file_vectors(kb_id, iceland) == vectors
    assert iceland in set(lexical_index().page_ids(knowledge_base_id=kb_id).values())
    assert bucket_keys(f"kb/{kb_id}/{iceland}/") == keys
    assert [r.ok for r in consistency_check()] == [True]

    response = api_client.post(f"/api/v1/trash/file/{iceland}/restore/")
    assert response.status_code == 200 and response.json() == {"kind": "file", "id": iceland}
    for mode in MODES:
        _same(before[mode], _hits(api_client, [kb_id], mode))
    assert api_client.get("/api/v1/trash/").json()["count"] == 0
    assert api_client.get(f"/api/v1/files/{iceland}/").json()["status"] == "completed"


def test_a_trashed_knowledge_base_comes_back_whole_and_a_purge_leaves_nothing(
    index_stack, api_client, user, corpus, django_capture_on_commit_callbacks
):
    kb_id, land, iceland = corpus
    before = _hits(api_client, [kb_id])
    assert api_client.delete(f"/api/v1/files/{iceland}/").status_code == 204  # in the trash on its own, first
    alone = _hits(api_client, [kb_id])
    with django_capture_on_commit_callbacks() as callbacks:
        assert api_client.delete(f"/api/v1/knowledge-bases/{kb_id}/").status_code == 204
    assert callbacks == []  # nothing purged
    assert api_client.post("/api/v1/search/", {"query": QUERY, "knowledge_base_ids": [kb_id]},
                           format="json").status_code == 404
    assert api_client.get("/api/v1/knowledge-bases/").json()["count"] == 0
    trash = api_client.get("/api/v1/trash/").json()["results"]
    assert [(i["kind"], i["id"]) for i in trash] == [("knowledge_base", kb_id)]  # its files come back with it
    assert api_client.post(f"/api/v1/trash/file/{iceland}/restore/").status_code == 409  # its KB is in the trash

    assert api_client.post(f"/api/v1/trash/knowledge_base/{kb_id}/restore/").status_code == 200
    _same(alone, _hits(api_client, [kb_id]))  # the file deleted before stays in the trash
    assert [(i["kind"], i["id"]) for i in api_client.get("/api/v1/trash/").json()["results"]] == [("file", iceland)]
    assert api_client.post(f"/api/v1/trash/file/{iceland}/restore/").status_code == 200
    _same(before, _hits(api_client, [kb_id]))

    # purge: the KB and everything of it, in every store
    assert api_client.delete(f"/api/v1/files/{iceland}/").status_code == 204
    assert api_client.delete(f"/api/v1/trash/file/{iceland}/").status_code == 204
    assert file_vectors(kb_id, iceland) == [] and bucket_keys(f"kb/{kb_id}/{iceland}/") == []
    assert not File.objects(file_id=iceland).count() and not IngestionJob.objects.filter(file_id=iceland).exists()
    assert file_vectors(kb_id, land)  # the other file is untouched
    assert KnowledgeBase.objects.get(knowledge_base_id=kb_id).hidden_file_ids == []
    assert api_client.delete(f"/api/v1/knowledge-bases/{kb_id}/").status_code == 204
    assert api_client.delete(f"/api/v1/trash/knowledge_base/{kb_id}/").status_code == 204
    assert not KnowledgeBase.objects(knowledge_base_id=kb_id).count()
    assert not File.objects(knowledge_db_id=kb_id).count()
    assert file_vectors(kb_id, land) == []
    assert lexical_index().page_ids(knowledge_base_id=kb_id) == {}
    assert bucket_keys() == []  # originals and page images
    assert not IngestionJob.objects.filter(knowledge_base_id=kb_id).exists()
    assert api_client.get("/api/v1/trash/").json()["count"] == 0
    assert api_client.post(f"/api/v1/trash/knowledge_base/{kb_id}/restore/").status_code == 404


def test_another_users_trash_is_404_and_unknown_kinds_too(api_client, other_client, user):
    kb = knowledge_base_create(user=user, name="Mine")
    assert api_client.delete(f"/api/v1/knowledge-bases/{kb.knowledge_base_id}/").status_code == 204
    assert other_client.get("/api/v1/trash/").json()["count"] == 0
    for method, url in (("post", f"/api/v1/trash/knowledge_base/{kb.knowledge_base_id}/restore/"),
                        ("delete", f"/api/v1/trash/knowledge_base/{kb.knowledge_base_id}/")):
        response = getattr(other_client, method)(url)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    response = api_client.post(f"/api/v1/trash/folder/{kb.knowledge_base_id}/restore/")
    assert response.status_code == 404 and "knowledge_base" in response.json()["error"]["details"]["kinds"]
    assert KnowledgeBase.objects.get(knowledge_base_id=kb.knowledge_base_id).is_delete  # still in the trash
    assert api_client.post(f"/api/v1/trash/knowledge_base/{kb.knowledge_base_id}/restore/").status_code == 200


def test_a_file_restored_before_it_completed_is_searched_once_it_is_retried(
    api_client, user, django_capture_on_commit_callbacks
):
    from knowledge.jobs import job_retry

    kb_id = knowledge_base_create(user=user, name="Late").knowledge_base_id
    # Uploaded, but its ingestion never ran (the enqueue is not executed), then deleted: it goes to the trash
    # hidden, and its job ends cancelled.
    response = api_client.post(upload_url(kb_id), {"files": [uploaded("late.pdf", samples.make_pdf([
        "Volcanoes erupt basalt lava"]))]}, format="multipart")
    file_id = response.json()[0]["file_id"]
    assert api_client.delete(f"/api/v1/files/{file_id}/").status_code == 204
    assert api_client.post(f"/api/v1/trash/file/{file_id}/restore/").status_code == 200
    job = IngestionJob.objects.get(file_id=file_id)
    assert job.state == "cancelled"
    with django_capture_on_commit_callbacks(execute=True):
        job_retry(job=job)
    assert IngestionJob.objects.get(file_id=file_id).state == "completed"
    assert {f for f, _, _ in _hits(api_client, [kb_id])} == {file_id}  # no longer on the KB's hidden list
