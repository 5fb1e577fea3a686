"""Retrieval-augmented answers over real ingested PDFs (knowledge pipeline + embeddings search, eager Celery)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from chat.documents import Conversation
from chat.tests.helpers import ask_json, make_conversation, make_model, text_pdf
from knowledge import services as knowledge_services
from knowledge.documents import File
from knowledge.selectors import knowledge_base_get
from layra.errors import NotFound
from tests.knowledge_helpers import bucket_keys

pytestmark = pytest.mark.django_db

PAGES = ["Photosynthesis converts sunlight into chemical energy in plants.",
         "Volcanoes erupt molten rock called lava from the mantle."]


def _pdf(name="biology.pdf"):
    return SimpleUploadedFile(name, text_pdf(PAGES), content_type="application/pdf")


def test_answer_cites_pages_and_sends_their_images_and_text(api_client, user, fake_llm,
                                                             django_capture_on_commit_callbacks):
    kb = knowledge_services.knowledge_base_create(user=user, name="Science")
    with django_capture_on_commit_callbacks(execute=True):
        files = knowledge_services.files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                                                uploaded_files=[_pdf()])
    make_model(api_client, fake_llm.url, base_used=[kb.knowledge_base_id], top_K=1)
    cid = make_conversation(api_client)
    body = ask_json(api_client, cid, "How do plants turn sunlight into energy?").json()

    assert len(body["citations"]) == 1
    citation = body["citations"][0]
    assert citation["file_id"] == files[0].file_id and citation["filename"] == "biology.pdf"
    assert citation["page_number"] == 1 and citation["knowledge_base_id"] == kb.knowledge_base_id
    assert citation["image_url"].startswith(f"/api/v1/files/{files[0].file_id}/pages/1/image/?size=full&")
    assert citation["thumbnail_url"].startswith(f"/api/v1/files/{files[0].file_id}/pages/1/image/?size=thumb&")
    assert "Photosynthesis" in citation["snippet"]
    content = fake_llm.last["messages"][-1]["content"]
    images = [p["image_url"]["url"] for p in content if p["type"] == "image_url"]
    assert len(images) == 1 and images[0].startswith("data:image/")
    assert any("Photosynthesis" in p["text"] for p in content if p["type"] == "text")
    turn = Conversation.objects.get(conversation_id=cid).turns[0]
    assert turn.file_used == body["citations"]


def test_conversation_files_go_to_a_temp_kb_searched_and_removed_with_the_conversation(
        api_client, user, fake_llm, django_capture_on_commit_callbacks):
    make_model(api_client, fake_llm.url, top_K=1)
    cid = make_conversation(api_client)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(f"/api/v1/conversations/{cid}/files", {"files": [_pdf("notes.pdf")]},
                                   format="multipart")
    assert response.status_code == 201, response.content
    temp_db = Conversation.objects.get(conversation_id=cid).temp_db
    assert response.json()[0]["knowledge_db_id"] == temp_db
    kb = knowledge_base_get(user=user, knowledge_base_id=temp_db)
    assert kb.is_temp and kb.conversation_id == cid
    with django_capture_on_commit_callbacks(execute=True):
        again = api_client.post(f"/api/v1/conversations/{cid}/files", {"files": [_pdf("more.pdf")]},
                                format="multipart")
    assert again.json()[0]["knowledge_db_id"] == temp_db  # one temp KB per conversation

    body = ask_json(api_client, cid, "What do volcanoes erupt?").json()
    assert body["citations"] and body["citations"][0]["knowledge_base_id"] == temp_db
    assert body["citations"][0]["page_number"] == 2
    assert Conversation.objects.get(conversation_id=cid).turns[0].temp_db == temp_db

    # the conversation goes to the trash with its temp KB; purging it removes the KB's files, pages and vectors
    assert api_client.delete(f"/api/v1/conversations/{cid}/").status_code == 204
    with pytest.raises(NotFound):
        knowledge_base_get(user=user, knowledge_base_id=temp_db)
    assert api_client.delete(f"/api/v1/trash/conversation/{cid}/").status_code == 204
    assert not File.objects(knowledge_db_id=temp_db).count()
    assert bucket_keys(f"kb/{temp_db}/") == []


def test_follow_up_questions_resend_the_cited_pages_of_recent_turns(api_client, user, fake_llm, settings,
                                                                    django_capture_on_commit_callbacks):
    kb = knowledge_services.knowledge_base_create(user=user, name="Science")
    with django_capture_on_commit_callbacks(execute=True):
        knowledge_services.files_upload(user=user, knowledge_base_id=kb.knowledge_base_id, uploaded_files=[_pdf()])
    make_model(api_client, fake_llm.url, base_used=[kb.knowledge_base_id], top_K=1)
    cid = make_conversation(api_client)
    first = ask_json(api_client, cid, "How do plants turn sunlight into energy?").json()
    ask_json(api_client, cid, "And what does the page say about chemical energy?")

    messages = fake_llm.last["messages"]
    earlier_question = messages[-3]
    assert earlier_question["role"] == "user" and messages[-2]["role"] == "assistant"
    parts = earlier_question["content"]
    assert parts[0] == {"type": "text", "text": "How do plants turn sunlight into energy?"}
    images = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert len(images) == len(first["citations"]) == 1 and images[0].startswith("data:image/")
    assert any("biology.pdf, page 1" in p["text"] for p in parts if p["type"] == "text")

    settings.CHAT_HISTORY_IMAGE_TURNS = 0
    ask_json(api_client, cid, "A third question about volcanoes?")
    history_users = [m for m in fake_llm.last["messages"][1:-1] if m["role"] == "user"]
    assert all(isinstance(m["content"], str) for m in history_users)


def test_a_saved_kb_deleted_since_is_left_out_and_a_finished_answer_marks_the_conversation_unread(
        api_client, user, fake_llm, django_capture_on_commit_callbacks):
    kept = knowledge_services.knowledge_base_create(user=user, name="Kept")
    gone = knowledge_services.knowledge_base_create(user=user, name="Gone")
    with django_capture_on_commit_callbacks(execute=True):
        knowledge_services.files_upload(user=user, knowledge_base_id=kept.knowledge_base_id, uploaded_files=[_pdf()])
    make_model(api_client, fake_llm.url, base_used=[gone.knowledge_base_id, kept.knowledge_base_id], top_K=1)
    knowledge_services.knowledge_base_delete(user=user, knowledge_base_id=gone.knowledge_base_id)
    cid = make_conversation(api_client)
    api_client.patch(f"/api/v1/conversations/{cid}/", {"is_read": True}, format="json")
    before = Conversation.objects.get(conversation_id=cid).last_modify_at

    response = ask_json(api_client, cid, "What do volcanoes erupt?")
    assert response.status_code == 200, response.content
    assert [c["knowledge_base_id"] for c in response.json()["citations"]] == [kept.knowledge_base_id]
    conversation = Conversation.objects.get(conversation_id=cid)
    turn = conversation.turns[0]
    assert turn.status == "completed" and turn.ai_message == response.json()["answer"]
    # the turn and the conversation are written in one update
    assert conversation.is_read is False and conversation.last_modify_at >= before
    assert conversation.last_modify_at == turn.finished_at


def test_a_turn_can_search_chosen_knowledge_bases_instead_of_the_models(api_client, other_client, user, fake_llm,
                                                                        django_capture_on_commit_callbacks):
    saved = knowledge_services.knowledge_base_create(user=user, name="Saved")
    chosen = knowledge_services.knowledge_base_create(user=user, name="Chosen")
    with django_capture_on_commit_callbacks(execute=True):
        files = knowledge_services.files_upload(user=user, knowledge_base_id=chosen.knowledge_base_id,
                                                uploaded_files=[_pdf()])
    make_model(api_client, fake_llm.url, base_used=[saved.knowledge_base_id], top_K=1)
    cid = make_conversation(api_client)
    question = "What do volcanoes erupt?"

    body = ask_json(api_client, cid, question, knowledge_base_ids=[chosen.knowledge_base_id]).json()
    assert [c["file_id"] for c in body["citations"]] == [files[0].file_id]
    assert ask_json(api_client, cid, question).json()["citations"] == []  # the model's saved KB: empty

    # Another user's KB id is a 404, before anything is recorded or sent to the model.
    make_model(other_client, fake_llm.url)
    other_cid = make_conversation(other_client)
    sent = fake_llm.count
    refused = ask_json(other_client, other_cid, question, knowledge_base_ids=[chosen.knowledge_base_id])
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    assert fake_llm.count == sent
    assert Conversation.objects.get(conversation_id=other_cid).turns == []


def test_a_file_in_the_trash_is_never_cited_and_cited_again_once_restored(
        api_client, user, fake_llm, django_capture_on_commit_callbacks):
    kb = knowledge_services.knowledge_base_create(user=user, name="Science")
    with django_capture_on_commit_callbacks(execute=True):
        first, second = knowledge_services.files_upload(
            user=user, knowledge_base_id=kb.knowledge_base_id,
            uploaded_files=[_pdf(), SimpleUploadedFile("lava.pdf", text_pdf(["Volcanoes erupt lava and ash."]),
                                                       content_type="application/pdf")])
    make_model(api_client, fake_llm.url, base_used=[kb.knowledge_base_id], top_K=3)
    cid = make_conversation(api_client)
    cited = {c["file_id"] for c in ask_json(api_client, cid, "What do volcanoes erupt?").json()["citations"]}
    assert second.file_id in cited

    assert api_client.delete(f"/api/v1/files/{second.file_id}/").status_code == 204
    citations = ask_json(api_client, cid, "What do volcanoes erupt?").json()["citations"]
    assert citations and {c["file_id"] for c in citations} == {first.file_id}
    assert api_client.post(f"/api/v1/trash/file/{second.file_id}/restore/").status_code == 200
    citations = ask_json(api_client, cid, "What do volcanoes erupt?").json()["citations"]
    assert second.file_id in {c["file_id"] for c in citations}
