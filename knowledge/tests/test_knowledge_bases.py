import json

import pytest

from knowledge import samples
from knowledge.documents import File, KnowledgeBase, PageImage
from knowledge.services import files_upload, knowledge_base_create
from layra.redis import redis_client
from tests.knowledge_helpers import uploaded

pytestmark = pytest.mark.django_db


def test_create_list_newest_first_with_counts_and_filter(api_client, user):
    for name in ("Alpha notes", "Beta", "alpha two"):
        assert api_client.post("/api/v1/knowledge-bases/", {"knowledge_base_name": name}).status_code == 201
    knowledge_base_create(user=user, name="temp", is_temp=True, conversation_id="c1")
    kb = KnowledgeBase.objects.get(knowledge_base_name="Beta")
    files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                 uploaded_files=[uploaded("a.pdf", samples.make_pdf(["x"])), uploaded("b.txt", b"hello")])
    File.objects(knowledge_db_id=kb.knowledge_base_id, kind="pdf").update_one(set__page_count=3)

    body = api_client.get("/api/v1/knowledge-bases/").json()
    assert body["count"] == 3
    assert [r["knowledge_base_name"] for r in body["results"]] == ["alpha two", "Beta", "Alpha notes"]
    beta = body["results"][1]
    assert (beta["file_count"], beta["page_count"]) == (2, 3)

    filtered = api_client.get("/api/v1/knowledge-bases/?name=ALPHA").json()
    assert [r["knowledge_base_name"] for r in filtered["results"]] == ["alpha two", "Alpha notes"]
    paged = api_client.get("/api/v1/knowledge-bases/?page_size=2&page=2").json()
    assert [r["knowledge_base_name"] for r in paged["results"]] == ["Alpha notes"]


def test_empty_name_is_400(api_client):
    response = api_client.post("/api/v1/knowledge-bases/", {"knowledge_base_name": "   "})
    assert response.status_code == 400


def test_detail_is_cached_and_invalidated_on_every_change(api_client, user):
    kb = knowledge_base_create(user=user, name="Cached")
    url = f"/api/v1/knowledge-bases/{kb.knowledge_base_id}/"
    cache = redis_client("cache")
    assert api_client.get(url).json()["file_count"] == 0
    assert json.loads(cache.get(f"kb:{kb.knowledge_base_id}"))["knowledge_base_name"] == "Cached"
    assert 0 < cache.ttl(f"kb:{kb.knowledge_base_id}") <= 1800

    renamed = api_client.patch(url, {"knowledge_base_name": "Renamed"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["knowledge_base_name"] == "Renamed"
    assert api_client.get(url).json()["knowledge_base_name"] == "Renamed"

    files_upload(user=user, knowledge_base_id=kb.knowledge_base_id, uploaded_files=[uploaded("a.txt", b"hi")])
    assert api_client.get(url).json()["file_count"] == 1


def test_kb_delete_goes_to_the_trash_invisible_at_once_bumps_version_and_is_audited(
    api_client, user, django_capture_on_commit_callbacks
):
    from accounts.models import AuditLog

    kb = knowledge_base_create(user=user, name="Gone")
    api_client.get(f"/api/v1/knowledge-bases/{kb.knowledge_base_id}/")  # warm the cache
    with django_capture_on_commit_callbacks() as callbacks:
        response = api_client.delete(f"/api/v1/knowledge-bases/{kb.knowledge_base_id}/")
    assert response.status_code == 204
    assert callbacks == []  # nothing is purged: it is in the trash
    assert api_client.get(f"/api/v1/knowledge-bases/{kb.knowledge_base_id}/").status_code == 404
    assert api_client.get("/api/v1/knowledge-bases/").json()["count"] == 0
    kb.reload()
    assert kb.is_delete and kb.deleted_at is not None and kb.version == 2
    assert [item["id"] for item in api_client.get("/api/v1/trash/").json()["results"]] == [kb.knowledge_base_id]
    assert AuditLog.objects.filter(action="kb.delete", resource_id=kb.knowledge_base_id).exists()


def test_another_users_kb_file_page_and_task_are_404_everywhere(api_client, other_client, user):
    kb = knowledge_base_create(user=user, name="Mine")
    file = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                        uploaded_files=[uploaded("a.pdf", samples.make_pdf(["x"]))])[0]
    File.objects(file_id=file.file_id).update_one(push__images=PageImage(
        images_id="img-1", page_number=1, minio_filename=file.minio_filename))
    kb_url = f"/api/v1/knowledge-bases/{kb.knowledge_base_id}/"
    calls = [
        ("get", kb_url, None), ("patch", kb_url, {"knowledge_base_name": "x"}), ("delete", kb_url, None),
        ("get", kb_url + "files/", None),
        ("post", kb_url + "files/", {"files": [uploaded("b.txt", b"hi")]}),
        ("get", f"/api/v1/files/{file.file_id}/", None), ("delete", f"/api/v1/files/{file.file_id}/", None),
        ("get", f"/api/v1/files/{file.file_id}/download", None),
        ("get", f"/api/v1/files/{file.file_id}/pages/1/image", None),
        ("get", f"/api/v1/tasks/{file.task_id}/", None), ("get", f"/api/v1/tasks/{file.task_id}/events", None),
        ("post", f"/api/v1/tasks/{file.task_id}/cancel", None),
    ]
    for method, url, data in calls:
        fmt = "multipart" if method == "post" and data else "json"
        response = getattr(other_client, method)(url, data, format=fmt)
        assert response.status_code == 404, (method, url, response.status_code)
        assert response.json()["error"]["code"] == "not_found"
    # ...while the owner still sees everything
    assert api_client.get(kb_url).status_code == 200
    assert api_client.get(f"/api/v1/files/{file.file_id}/download").content == samples.make_pdf(["x"])
    assert api_client.get(f"/api/v1/files/{file.file_id}/pages/1/image").status_code == 200
    assert api_client.get(f"/api/v1/tasks/{file.task_id}/").json()["state"] == "queued"


def test_download_returns_the_original(api_client, user):
    kb = knowledge_base_create(user=user, name="Mine")
    data = samples.make_pdf(["download me"])
    file = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id, uploaded_files=[uploaded("d.pdf", data)])[0]
    response = api_client.get(f"/api/v1/files/{file.file_id}/download")
    assert response.status_code == 200
    assert response.content == data
    assert response["Content-Type"] == "application/pdf"
    assert "d.pdf" in response["Content-Disposition"]
    presigned = api_client.get(f"/api/v1/files/{file.file_id}/download?redirect=1").json()
    assert presigned["expires_in"] <= 3600 and "X-Amz-Expires=3600" in presigned["url"]


def test_page_selectors_and_url(user, other_user):
    from knowledge.selectors import page_image_data, page_image_url, pages_get

    kb = knowledge_base_create(user=user, name="Mine")
    file = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                        uploaded_files=[uploaded("p.png", samples.make_png("x"))])[0]
    File.objects(file_id=file.file_id).update_one(push__images=PageImage(
        images_id="img-9", page_number=1, minio_filename=file.minio_filename))
    found_file, page = pages_get(user=user, image_ids=["img-9"])["img-9"]
    assert found_file.file_id == file.file_id and page.page_number == 1
    assert page_image_data(page) == samples.make_png("x")
    assert "img-9" not in pages_get(user=other_user, image_ids=["img-9"])
    url = page_image_url(user=user, file_id=file.file_id, page_number=1)
    assert url.startswith(f"/api/v1/files/{file.file_id}/pages/1/image/?size=full&uid={user.pk}&exp=")


def test_list_counts_are_cached_and_dropped_by_every_change_of_files(api_client, user):
    from knowledge.selectors import counts_cache_key

    kb = knowledge_base_create(user=user, name="Counted")
    cache = redis_client("cache")

    def counts():
        row = api_client.get("/api/v1/knowledge-bases/").json()["results"][0]
        return row["file_count"], row["page_count"]

    assert counts() == (0, 0)
    assert cache.get(counts_cache_key(kb.knowledge_base_id)) == "0,0"
    assert 0 < cache.ttl(counts_cache_key(kb.knowledge_base_id)) <= 1800
    files = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                         uploaded_files=[uploaded("a.txt", b"one"), uploaded("b.txt", b"two")])
    assert counts() == (2, 0)  # read from Mongo: the upload left a tombstone that stops filling for a while
    cache.delete(counts_cache_key(kb.knowledge_base_id))  # the tombstone expires
    assert counts() == (2, 0)
    # a write that bypasses the services is not seen until the entry goes: proof the list reads the cache
    File.objects(file_id=files[0].file_id).update_one(set__page_count=4)
    assert counts() == (2, 0)
    assert api_client.delete(f"/api/v1/files/{files[1].file_id}/").status_code == 204
    assert counts() == (1, 4)
    # a cache outage falls back to counting in Mongo
    cache.delete(counts_cache_key(kb.knowledge_base_id))
    assert counts() == (1, 4)


def test_files_of_a_kb_deleted_after_its_detail_was_cached_are_404(api_client, user):
    kb = knowledge_base_create(user=user, name="Short lived")
    url = f"/api/v1/knowledge-bases/{kb.knowledge_base_id}/files/"
    assert api_client.get(url).status_code == 200  # caches the KB's detail
    assert api_client.delete(f"/api/v1/knowledge-bases/{kb.knowledge_base_id}/").status_code == 204
    assert api_client.get(url).status_code == 404


def test_pages_get_reads_many_pages_in_one_query_with_the_owner_checked(user, other_user):
    from knowledge.selectors import pages_get

    kb = knowledge_base_create(user=user, name="Mine")
    first, second = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                                 uploaded_files=[uploaded("a.txt", b"a"), uploaded("b.txt", b"b")])
    for file, ids in ((first, ["a-1", "a-2", "a-3"]), (second, ["b-1"])):
        File.objects(file_id=file.file_id).update_one(set__images=[
            PageImage(images_id=image_id, page_number=n, minio_filename=file.minio_filename)
            for n, image_id in enumerate(ids, start=1)])
    found = pages_get(user=user, image_ids=["a-2", "b-1", "a-1", "missing"])
    assert {i: (f.file_id, p.page_number) for i, (f, p) in found.items()} == {
        "a-1": (first.file_id, 1), "a-2": (first.file_id, 2), "b-1": (second.file_id, 1)}
    # only the asked-for pages of a file come back, not all of its images[]
    assert [p.images_id for p in found["a-1"][0].images] == ["a-1", "a-2"]
    assert found["b-1"][0].filename == "b.txt" and found["a-2"][1].minio_filename == first.minio_filename
    assert pages_get(user=other_user, image_ids=["a-1", "b-1"]) == {}
    File.objects(file_id=second.file_id).update_one(set__is_delete=True)
    assert set(pages_get(user=user, image_ids=["a-1", "b-1"])) == {"a-1"}
    assert pages_get(user=user, image_ids=[]) == {}


def test_page_images_are_read_from_storage_once_per_rendering(user):
    from knowledge.selectors import page_image_cache, page_image_data
    from layra.storage import object_put

    page = PageImage(images_id="img-c", page_number=1, minio_filename=f"{user.username}/cache-test/1.png",
                     width=10, height=10)
    object_put(key=page.minio_filename, data=samples.make_png("first"))
    assert page_image_data(page) == samples.make_png("first")
    object_put(key=page.minio_filename, data=samples.make_png("second"))
    hits = page_image_cache().hits
    assert page_image_data(page) == samples.make_png("first")  # served from the process cache
    assert page_image_cache().hits == hits + 1
    page.width = 20  # rendered again at another size (a reindex): read afresh
    assert page_image_data(page) == samples.make_png("second")


def test_kb_list_is_read_from_the_cache_and_follows_creates_renames_and_deletes_at_once(api_client, user,
                                                                                       other_user):
    from knowledge.selectors import own_ids_cache_key
    from knowledge.services import kb_version_bump
    from layra.cache import TOMBSTONE

    def names(query: str = "") -> list[str]:
        return [r["knowledge_base_name"] for r in api_client.get(f"/api/v1/knowledge-bases/{query}").json()["results"]]

    def create(name: str) -> str:
        return api_client.post("/api/v1/knowledge-bases/", {"knowledge_base_name": name}).json()["knowledge_base_id"]

    alpha = create("Alpha")
    knowledge_base_create(user=other_user, name="Not mine")
    redis_client("cache").delete(own_ids_cache_key(user.username))  # the create's tombstone expires
    assert names() == ["Alpha"]
    assert json.loads(redis_client("cache").get(own_ids_cache_key(user.username))) == [alpha]
    beta = create("Beta")
    assert names() == ["Beta", "Alpha"]
    api_client.patch(f"/api/v1/knowledge-bases/{alpha}/", {"knowledge_base_name": "Gamma"}, format="json")
    assert names() == ["Beta", "Gamma"] and names("?name=gAm") == ["Gamma"]
    assert api_client.delete(f"/api/v1/knowledge-bases/{beta}/").status_code == 204
    assert names() == ["Gamma"]
    # deleted where the owner's list is not dropped (the admin, cleanup): left out, and the stale list dropped
    redis_client("cache").delete(own_ids_cache_key(user.username))
    assert names() == ["Gamma"]
    kb_version_bump(knowledge_base_id=alpha, is_delete=True)
    assert names() == []
    assert redis_client("cache").get(own_ids_cache_key(user.username)) == TOMBSTONE


def test_a_fill_that_read_mongo_before_a_write_does_not_outlive_the_write(user):
    from knowledge.selectors import knowledge_base_detail, knowledge_base_to_dict, summary_cache_key
    from knowledge.services import knowledge_base_rename
    from layra import cache

    kb = knowledge_base_create(user=user, name="Old")
    stale = knowledge_base_to_dict(kb, files=0, pages=0)  # a reader read the KB from Mongo ...
    knowledge_base_rename(user=user, knowledge_base_id=kb.knowledge_base_id, name="New")  # ... a rename drops it ...
    cache.fill(summary_cache_key, {kb.knowledge_base_id: json.dumps(stale)}, ttl=60)  # ... and the reader fills late
    assert knowledge_base_detail(user=user, knowledge_base_id=kb.knowledge_base_id)["knowledge_base_name"] == "New"


def test_file_list_pages_newest_first_with_the_kb_count_and_follows_deletes(api_client, user):
    kb = knowledge_base_create(user=user, name="Paged files")
    url = f"/api/v1/knowledge-bases/{kb.knowledge_base_id}/files/"
    uploads = []
    for n in range(5):  # one upload each: each file gets its own created_at
        uploads += files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                                uploaded_files=[uploaded(f"{n}.txt", f"file {n}".encode())])
    newest_first = [f.file_id for f in reversed(uploads)]
    pages = [api_client.get(f"{url}?page_size=2&page={n}").json() for n in (1, 2, 3)]
    assert [p["count"] for p in pages] == [5, 5, 5]
    assert [[row["file_id"] for row in p["results"]] for p in pages] == [
        newest_first[:2], newest_first[2:4], newest_first[4:]]
    assert pages[0]["next"].endswith("page=2&page_size=2") and pages[2]["next"] is None
    assert api_client.get(f"{url}?page_size=2&page=4").status_code == 404  # past the end, as DRF answers
    assert api_client.delete(f"/api/v1/files/{uploads[3].file_id}/").status_code == 204
    listed = api_client.get(url).json()
    assert listed["count"] == 4 and uploads[3].file_id not in [row["file_id"] for row in listed["results"]]


def test_counted_query_reads_only_the_asked_for_window():
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from layra.pagination import CountedQuery, PagePagination

    class Recording(list):
        windows: list = []

        def __getitem__(self, window):
            Recording.windows.append((window.start, window.stop))
            return super().__getitem__(window)

    query = CountedQuery(Recording(range(100)), 100)
    request = Request(APIRequestFactory().get("/x/?page=3&page_size=10"))
    assert PagePagination().paginate_queryset(query, request) == list(range(20, 30))
    assert Recording.windows == [(20, 30)]
