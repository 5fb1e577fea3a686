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


def test_kb_delete_is_invisible_at_once_bumps_version_and_is_audited(
    api_client, user, django_capture_on_commit_callbacks
):
    from accounts.models import AuditLog

    kb = knowledge_base_create(user=user, name="Gone")
    api_client.get(f"/api/v1/knowledge-bases/{kb.knowledge_base_id}/")  # warm the cache
    with django_capture_on_commit_callbacks() as callbacks:
        response = api_client.delete(f"/api/v1/knowledge-bases/{kb.knowledge_base_id}/")
    assert response.status_code == 204
    assert len(callbacks) == 1  # the purge is enqueued on commit
    assert api_client.get(f"/api/v1/knowledge-bases/{kb.knowledge_base_id}/").status_code == 404
    assert api_client.get("/api/v1/knowledge-bases/").json()["count"] == 0
    kb.reload()
    assert kb.is_delete and kb.version == 2
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
    from knowledge.selectors import page_get, page_image_bytes, page_image_url
    from layra.errors import NotFound

    kb = knowledge_base_create(user=user, name="Mine")
    file = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                        uploaded_files=[uploaded("p.png", samples.make_png("x"))])[0]
    File.objects(file_id=file.file_id).update_one(push__images=PageImage(
        images_id="img-9", page_number=1, minio_filename=file.minio_filename))
    found_file, page = page_get(user=user, image_id="img-9")
    assert found_file.file_id == file.file_id and page.page_number == 1
    assert page_image_bytes(user=user, image_id="img-9") == samples.make_png("x")
    with pytest.raises(NotFound):
        page_get(user=other_user, image_id="img-9")
    assert page_image_url(image_id="img-9", file_id=file.file_id, page_number=1) == (
        f"/api/v1/files/{file.file_id}/pages/1/image")
