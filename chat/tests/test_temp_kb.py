"""The conversation's temporary KB through the knowledge services (no retrieval needed)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from chat.documents import Conversation
from chat.tests.helpers import make_conversation, text_pdf
from knowledge import services as knowledge_services
from knowledge.selectors import knowledge_base_get
from layra.errors import NotFound

pytestmark = pytest.mark.django_db


def _pdf(name="notes.pdf"):
    return SimpleUploadedFile(name, text_pdf(["Volcanoes erupt lava."]), content_type="application/pdf")


def test_conversation_files_are_uploaded_into_one_temp_kb(api_client, user):
    cid = make_conversation(api_client)
    response = api_client.post(f"/api/v1/conversations/{cid}/files", {"files": [_pdf()]}, format="multipart")
    assert response.status_code == 201, response.content
    temp_db = Conversation.objects.get(conversation_id=cid).temp_db
    uploaded = response.json()[0]
    assert uploaded["knowledge_db_id"] == temp_db and uploaded["filename"] == "notes.pdf" and uploaded["task_id"]
    kb = knowledge_base_get(user=user, knowledge_base_id=temp_db)
    assert kb.is_temp and kb.conversation_id == cid
    again = api_client.post(f"/api/v1/conversations/{cid}/files", {"files": [_pdf("more.pdf")]},
                            format="multipart")
    assert again.status_code == 201 and again.json()[0]["knowledge_db_id"] == temp_db


def test_other_users_conversation_files_is_404(api_client, other_client):
    cid = make_conversation(api_client)
    response = other_client.post(f"/api/v1/conversations/{cid}/files", {"files": [_pdf()]}, format="multipart")
    assert response.status_code == 404


def test_upload_without_files_is_400(api_client):
    cid = make_conversation(api_client)
    assert api_client.post(f"/api/v1/conversations/{cid}/files", {}, format="multipart").status_code == 400


def test_deleting_a_conversation_trashes_its_temp_kb_only_and_restore_brings_both_back(
    api_client, user, django_capture_on_commit_callbacks
):
    from chat.services import conversation_temp_kb_ensure
    from knowledge.documents import KnowledgeBase

    keep = knowledge_services.knowledge_base_create(user=user, name="Keep me")
    cid = make_conversation(api_client)
    temp_db = conversation_temp_kb_ensure(user=user, conversation_id=cid)
    assert conversation_temp_kb_ensure(user=user, conversation_id=cid) == temp_db
    with django_capture_on_commit_callbacks() as purges:
        assert api_client.delete(f"/api/v1/conversations/{cid}/").status_code == 204
    assert purges == []  # to the trash: nothing is purged yet
    assert api_client.get(f"/api/v1/conversations/{cid}/").status_code == 404
    assert api_client.get("/api/v1/conversations/").json()["count"] == 0
    with pytest.raises(NotFound):
        knowledge_base_get(user=user, knowledge_base_id=temp_db)
    assert knowledge_base_get(user=user, knowledge_base_id=keep.knowledge_base_id)
    trash = api_client.get("/api/v1/trash/").json()["results"]
    assert [(i["kind"], i["id"]) for i in trash] == [("conversation", cid)]  # the temp KB goes with it

    assert api_client.post(f"/api/v1/trash/conversation/{cid}/restore/").status_code == 200
    assert api_client.get(f"/api/v1/conversations/{cid}/").status_code == 200
    assert knowledge_base_get(user=user, knowledge_base_id=temp_db).is_temp
    assert api_client.get("/api/v1/trash/").json()["count"] == 0

    assert api_client.delete(f"/api/v1/conversations/{cid}/").status_code == 204
    assert api_client.delete(f"/api/v1/trash/conversation/{cid}/").status_code == 204
    assert not KnowledgeBase.objects(knowledge_base_id=temp_db).count()
    assert not Conversation.objects(conversation_id=cid).count()
    assert api_client.post(f"/api/v1/trash/conversation/{cid}/restore/").status_code == 404


def test_a_deleted_temp_kb_is_replaced_on_the_next_upload(api_client, user):
    from chat.services import conversation_temp_kb_ensure

    cid = make_conversation(api_client)
    first = conversation_temp_kb_ensure(user=user, conversation_id=cid)
    knowledge_services.knowledge_base_delete(user=user, knowledge_base_id=first)
    second = conversation_temp_kb_ensure(user=user, conversation_id=cid)
    assert second != first
    assert Conversation.objects.get(conversation_id=cid).temp_db == second


def test_other_users_kb_in_base_used_is_404(api_client, other_user):
    theirs = knowledge_services.knowledge_base_create(user=other_user, name="Private")
    response = api_client.post("/api/v1/models/", {"model_name": "m", "model_url": "https://api.example.com/v1",
                                                   "base_used": [theirs.knowledge_base_id]}, format="json")
    assert response.status_code == 404
