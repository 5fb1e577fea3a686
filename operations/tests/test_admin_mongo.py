"""Operator admin over Mongo documents rendered with data: changelist, search, filters, detail, actions."""

import pytest
from django.test import Client

from knowledge.documents import File, KnowledgeBase
from knowledge.models import IngestionJob
from tests.fake_llm import refused_url
from tests.operators_helpers import ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(db):
    from tests.factories import UserFactory

    admin = UserFactory(username="root-op", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    return client


def test_changelists_search_filter_detail(admin_client, user, django_capture_on_commit_callbacks):
    from chat.services import model_create

    kb, files = ingest(user, django_capture_on_commit_callbacks)
    model_create(user=user, model_name="gpt-x", model_url=refused_url(), api_key="sk-supersecretkey1234")
    assert admin_client.get("/admin/mongo/").status_code == 200
    body = admin_client.get("/admin/mongo/knowledgebase/").content.decode()
    assert kb.knowledge_base_name in body and "1 result" in body
    body = admin_client.get("/admin/mongo/file/", {"q": "penguin"}).content.decode()
    assert "penguins.txt" in body and "spices.pdf" not in body
    body = admin_client.get("/admin/mongo/file/", {"status": "failed"}).content.decode()
    assert "0 result" in body
    pdf = next(f for f in files if f.filename == "spices.pdf")
    body = admin_client.get(f"/admin/mongo/file/{pdf.file_id}/").content.decode()
    assert "page_number" in body and "/admin/knowledge/ingestionjob/" in body  # link to the ORM job
    body = admin_client.get(f"/admin/mongo/modelconfig/{user.username}/").content.decode()
    assert "gpt-x" in body and "sk-supersecretkey1234" not in body and "****" in body
    assert admin_client.get("/admin/mongo/file/nope/").status_code == 404
    assert admin_client.get("/admin/mongo/unknown/").status_code == 404
    anon = Client()
    assert anon.get("/admin/mongo/file/").status_code == 302  # staff only


def test_actions_reindex_retry_cancel_soft_delete(admin_client, user, api_client, django_capture_on_commit_callbacks):
    kb, files = ingest(user, django_capture_on_commit_callbacks, docs={"a.txt": b"operator admin actions"})
    file = files[0]
    url = f"/admin/mongo/file/{file.file_id}/"
    response = admin_client.post(url, {"action": "reindex"}, follow=True)
    assert "Reindexed 1 pages" in response.content.decode()
    response = admin_client.post(url, {"action": "retry"}, follow=True)
    assert "Only failed or cancelled jobs" in response.content.decode()  # completed: refused, shown
    job = IngestionJob.objects.get(file_id=file.file_id)
    IngestionJob.objects.filter(pk=job.pk).update(state="failed", error="boom")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"action": "retry"}, follow=True)
    assert "requeued" in response.content.decode()
    job.refresh_from_db()
    assert job.state == "completed"
    IngestionJob.objects.filter(pk=job.pk).update(state="rendering")
    admin_client.post(url, {"action": "cancel"})
    job.refresh_from_db()
    assert job.state == "cancelled"
    response = admin_client.post(f"/admin/mongo/knowledgebase/{kb.knowledge_base_id}/", {"action": "reindex"},
                                 follow=True)
    assert "Reindexed" in response.content.decode()
    admin_client.post(f"/admin/mongo/knowledgebase/{kb.knowledge_base_id}/", {"action": "soft_delete"})
    assert KnowledgeBase.objects.get(knowledge_base_id=kb.knowledge_base_id).is_delete
    assert File.objects.get(file_id=file.file_id).is_delete
    # The owner's own delete: one item in their trash, gone from their list, restored whole with its file.
    trash = api_client.get("/api/v1/trash/").json()["results"]
    assert [(t["kind"], t["id"]) for t in trash] == [("knowledge_base", kb.knowledge_base_id)]
    assert api_client.get("/api/v1/knowledge-bases/").json()["count"] == 0
    assert api_client.post(f"/api/v1/trash/knowledge_base/{kb.knowledge_base_id}/restore/").status_code == 200
    assert not File.objects.get(file_id=file.file_id).is_delete


def test_ingestion_job_admin_retry_and_cancel_actions(admin_client, user, django_capture_on_commit_callbacks):
    kb, files = ingest(user, django_capture_on_commit_callbacks, docs={"b.txt": b"job admin actions"})
    job = IngestionJob.objects.get(file_id=files[0].file_id)
    body = admin_client.get("/admin/knowledge/ingestionjob/").content.decode()
    assert "retry_jobs" in body and "cancel_jobs" in body
    IngestionJob.objects.filter(pk=job.pk).update(state="failed")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/admin/knowledge/ingestionjob/", {"action": "retry_jobs", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.state == "completed"
    IngestionJob.objects.filter(pk=job.pk).update(state="embedding")
    admin_client.post("/admin/knowledge/ingestionjob/", {"action": "cancel_jobs", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.state == "cancelled"
