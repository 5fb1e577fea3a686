"""Versioned re-upload on the real stores: a new version of a file replaces the current one when its ingestion
completes, and a search never returns pages of both (checked at the swap itself and by searches running beside the
whole ingestion); the old version waits in the trash and a restore makes it current again."""

import threading

import pytest

from embeddings.embedders import embedder_spec
from embeddings.hybrid import pages_search
from knowledge import pipeline, samples
from knowledge.documents import File
from knowledge.search import search
from knowledge.services import knowledge_base_create
from tests.knowledge_helpers import file_vectors, upload_url, uploaded

QUERY = "volcanoes erupt basalt lava"
OLD = ["Volcanoes erupt basalt lava near the rift, first edition"]
NEW = ["Volcanoes erupt basalt lava near the rift, second edition with maps"]


def _upload(client, capture, kb_id, name, pages, **fields):
    with capture(execute=True):
        response = client.post(upload_url(kb_id), {"files": [uploaded(name, samples.make_pdf(pages))], **fields},
                               format="multipart")
    assert response.status_code == 201, response.content
    return response.json()[0]


def _files_found(user, kb_id, mode="hybrid") -> set[str]:
    return {h["file_id"] for h in search(user=user, knowledge_base_ids=[kb_id], query=QUERY, top_k=10, mode=mode)}


def test_a_new_version_replaces_the_old_one_when_ingested_never_both_at_once(
    index_stack, api_client, user, django_capture_on_commit_callbacks, monkeypatch
):
    kb_id = knowledge_base_create(user=user, name="Versions").knowledge_base_id
    old = _upload(api_client, django_capture_on_commit_callbacks, kb_id, "atlas.pdf", OLD)
    assert (old["version"], old["document_id"], old["replaces"]) == (1, old["file_id"], None)

    seen: list[set[str]] = []
    at_swap: dict[str, set[str]] = {}
    real_complete = pipeline.version_complete

    def swap_watched(*, file_id):
        # the new version's pages are indexed now: without the hidden list a search would find both files
        spec = embedder_spec()
        raw = pages_search(knowledge_base_ids=[kb_id], query=QUERY, query_vectors=None, embedder=spec.name,
                           dim=spec.dim, top_k=10, mode="lexical", strong=True)
        at_swap["indexes"] = {h["file_id"] for h in raw}
        at_swap["before"] = _files_found(user, kb_id)
        real_complete(file_id=file_id)
        at_swap["after"] = _files_found(user, kb_id)

    monkeypatch.setattr(pipeline, "version_complete", swap_watched)
    stop = threading.Event()

    def search_beside():
        while not stop.is_set():
            seen.append(_files_found(user, kb_id))

    beside = threading.Thread(target=search_beside)
    beside.start()
    try:
        new = _upload(api_client, django_capture_on_commit_callbacks, kb_id, "atlas.pdf", NEW)
        for _ in range(3):
            seen.append(_files_found(user, kb_id))
    finally:
        stop.set()
        beside.join(60)
    old_id, new_id = old["file_id"], new["file_id"]
    assert (new["version"], new["document_id"], new["replaces"]) == (2, old_id, old_id)
    assert at_swap["indexes"] == {old_id, new_id}  # both versions' pages were in the index at the swap
    assert at_swap["before"] == {old_id} and at_swap["after"] == {new_id}
    assert len(seen) >= 3 and all(found in ({old_id}, {new_id}) for found in seen), seen
    assert seen[-1] == {new_id}
    for mode in ("dense", "lexical"):
        assert _files_found(user, kb_id, mode) == {new_id}

    files = api_client.get(f"/api/v1/knowledge-bases/{kb_id}/files/").json()["results"]
    assert [(f["file_id"], f["version"], f["replaces"]) for f in files] == [(new_id, 2, None)]
    trash = api_client.get("/api/v1/trash/").json()["results"]
    assert [(i["kind"], i["id"], i["replaced_by"]) for i in trash] == [("file", old_id, new_id)]
    assert file_vectors(kb_id, old_id)  # kept while in the trash
    versions = api_client.get(f"/api/v1/files/{new_id}/versions/").json()
    assert [(v["file_id"], v["version"], v["current"], v["in_trash"]) for v in versions["results"]] == [
        (new_id, 2, True, False), (old_id, 1, False, True)]

    # restoring the old version makes it current again and sends the newer one to the trash
    assert api_client.post(f"/api/v1/trash/file/{old_id}/restore/").status_code == 200
    assert _files_found(user, kb_id) == {old_id}
    trash = api_client.get("/api/v1/trash/").json()["results"]
    assert [(i["id"], i["replaced_by"]) for i in trash] == [(new_id, old_id)]
    versions = api_client.get(f"/api/v1/files/{old_id}/versions/").json()["results"]
    assert [(v["file_id"], v["current"]) for v in versions] == [(new_id, False), (old_id, True)]


def test_identical_content_is_deduplicated_and_keep_both_keeps_separate_files(
    api_client, user, django_capture_on_commit_callbacks
):
    kb_id = knowledge_base_create(user=user, name="Dedup").knowledge_base_id
    first = _upload(api_client, django_capture_on_commit_callbacks, kb_id, "atlas.pdf", OLD)
    again = _upload(api_client, django_capture_on_commit_callbacks, kb_id, "atlas.pdf", OLD)
    assert again["file_id"] == first["file_id"]  # the same bytes: nothing new stored
    both = _upload(api_client, django_capture_on_commit_callbacks, kb_id, "atlas.pdf", NEW, keep_both="true")
    assert both["file_id"] != first["file_id"] and (both["version"], both["replaces"]) == (1, None)
    assert both["document_id"] == both["file_id"]
    assert _files_found(user, kb_id) == {first["file_id"], both["file_id"]}
    assert api_client.get("/api/v1/trash/").json()["count"] == 0
    listed = api_client.get(f"/api/v1/files/{first['file_id']}/versions/").json()
    assert [v["file_id"] for v in listed["results"]] == [first["file_id"]]


def test_a_version_still_ingesting_is_hidden_and_a_failed_one_leaves_the_current_version(
    api_client, user, django_capture_on_commit_callbacks
):
    kb_id = knowledge_base_create(user=user, name="Pending").knowledge_base_id
    old = _upload(api_client, django_capture_on_commit_callbacks, kb_id, "atlas.pdf", OLD)
    with django_capture_on_commit_callbacks():  # queued, not run
        response = api_client.post(upload_url(kb_id), {"files": [uploaded("atlas.pdf", samples.make_pdf(NEW))]},
                                   format="multipart")
    pending = response.json()[0]
    assert pending["replaces"] == old["file_id"] and pending["status"] == "queued"
    assert _files_found(user, kb_id) == {old["file_id"]}
    assert api_client.delete(f"/api/v1/files/{pending['file_id']}/").status_code == 204  # a change of mind
    assert File.objects.get(file_id=old["file_id"]).is_delete is False
    assert _files_found(user, kb_id) == {old["file_id"]}
    assert api_client.delete(f"/api/v1/trash/file/{pending['file_id']}/").status_code == 204
    assert not File.objects(file_id=pending["file_id"]).count()


@pytest.mark.parametrize("keep_both", ["1", "yes-please"])
def test_keep_both_must_be_a_boolean(api_client, user, keep_both):
    kb_id = knowledge_base_create(user=user, name="Bool").knowledge_base_id
    response = api_client.post(upload_url(kb_id) + f"?keep_both={keep_both}",
                               {"files": [uploaded("a.txt", b"text")]}, format="multipart")
    assert response.status_code == (201 if keep_both == "1" else 400), response.content
