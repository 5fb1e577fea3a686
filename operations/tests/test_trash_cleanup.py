"""The nightly cleanup and the trash: items stay whole for TRASH_RETENTION_DAYS (no step takes their vectors or
objects for orphans, check_consistency reports them as consistent), then are purged from every store; conversations
idle for CONVERSATION_RETENTION_DAYS are purged when it is set."""

from datetime import timedelta

import pytest
from django.core.management import call_command

from chat.documents import Conversation
from chat.services import conversation_create, conversation_files_upload
from embeddings.lexical import lexical_index
from knowledge.documents import File, KnowledgeBase
from knowledge.search import search
from layra.ids import utcnow
from operations.tasks import nightly_cleanup
from tests.knowledge_helpers import bucket_keys, file_vectors, uploaded
from tests.operators_helpers import ingest
from tests.workflows_helpers import chain, node
from workflows import services as workflow_services
from workflows.documents import Workflow

pytestmark = pytest.mark.django_db


def _consistency(capsys):
    with pytest.raises(SystemExit) as exc:
        call_command("check_consistency")
        raise SystemExit(0)
    return exc.value.code, capsys.readouterr().out


def _age(document_class, days: int, **match) -> None:
    document_class.objects(**match).update(set__deleted_at=utcnow() - timedelta(days=days))


def test_the_trash_survives_the_nightly_cleanup_until_it_expires(
    api_client, user, django_capture_on_commit_callbacks, capsys, settings
):
    settings.TRASH_RETENTION_DAYS = 7
    kb, files = ingest(user, django_capture_on_commit_callbacks)
    kb_id = kb.knowledge_base_id
    spices = next(f for f in files if f.filename == "spices.pdf")
    before = [h["image_id"] for h in search(user=user, knowledge_base_ids=[kb_id], query="cloves nutmeg", top_k=3)]
    assert api_client.delete(f"/api/v1/files/{spices.file_id}/").status_code == 204
    other, _ = ingest(user, django_capture_on_commit_callbacks, name="Second",
                      docs={"tea.txt": b"Darjeeling tea grows on the slopes of the Himalaya."})
    assert api_client.delete(f"/api/v1/knowledge-bases/{other.knowledge_base_id}/").status_code == 204
    nodes, edges = chain(node("start", "start"), node("end", "end"))
    wf = workflow_services.workflow_create(user=user, workflow_name="old flow", nodes=nodes, edges=edges)
    assert api_client.delete(f"/api/v1/workflows/{wf.workflow_id}/").status_code == 204
    conversation = conversation_create(user=user, conversation_name="old chat")
    assert api_client.delete(f"/api/v1/conversations/{conversation.conversation_id}/").status_code == 204

    code, out = _consistency(capsys)
    assert code == 0 and "2 knowledge bases checked, 0 inconsistent" in out, out
    result = nightly_cleanup()
    assert result["trash"] == 0 and result["orphan_vectors"] == 0 and result["orphan_objects"] == 0, result
    vectors = file_vectors(kb_id, spices.file_id)
    assert vectors and bucket_keys(f"kb/{kb_id}/{spices.file_id}/")
    assert api_client.get("/api/v1/trash/").json()["count"] == 4
    assert api_client.post(f"/api/v1/trash/file/{spices.file_id}/restore/").status_code == 200
    assert [h["image_id"] for h in search(user=user, knowledge_base_ids=[kb_id], query="cloves nutmeg",
                                          top_k=3)] == before
    assert api_client.delete(f"/api/v1/files/{spices.file_id}/").status_code == 204

    # six days in the trash: kept; eight days: purged everywhere
    for document_class in (File, KnowledgeBase, Workflow, Conversation):
        _age(document_class, 6, is_delete=True)
    assert nightly_cleanup()["trash"] == 0
    for document_class in (File, KnowledgeBase, Workflow, Conversation):
        _age(document_class, 8, is_delete=True)
    assert nightly_cleanup()["trash"] == 4  # the file, the KB (its file with it), the workflow, the conversation
    assert not File.objects(file_id=spices.file_id).count()
    assert file_vectors(kb_id, spices.file_id) == [] and bucket_keys(f"kb/{kb_id}/{spices.file_id}/") == []
    assert not KnowledgeBase.objects(knowledge_base_id=other.knowledge_base_id).count()
    assert lexical_index().page_ids(knowledge_base_id=other.knowledge_base_id) == {}
    assert bucket_keys(f"kb/{other.knowledge_base_id}/") == []
    assert not Workflow.objects(workflow_id=wf.workflow_id).count()
    assert not Conversation.objects(conversation_id=conversation.conversation_id).count()
    assert api_client.get("/api/v1/trash/").json()["count"] == 0
    assert len(file_vectors(kb_id, next(f.file_id for f in files if f != spices)))  # the live file is untouched
    code, out = _consistency(capsys)
    assert code == 0 and "1 knowledge bases checked, 0 inconsistent" in out, out


def test_conversation_retention_purges_idle_conversations_only_when_set(
    user, django_capture_on_commit_callbacks, settings
):
    old = conversation_create(user=user, conversation_name="idle")
    with django_capture_on_commit_callbacks(execute=True):
        conversation_files_upload(user=user, conversation_id=old.conversation_id,
                                  uploaded_files=[uploaded("notes.txt", b"Notes about the idle conversation.")])
    temp_db = Conversation.objects.get(conversation_id=old.conversation_id).temp_db
    assert file_vectors(temp_db, File.objects.get(knowledge_db_id=temp_db).file_id)
    recent = conversation_create(user=user, conversation_name="recent")
    Conversation.objects(conversation_id=old.conversation_id).update_one(
        set__last_modify_at=utcnow() - timedelta(days=40))

    settings.CONVERSATION_RETENTION_DAYS = None
    assert nightly_cleanup()["conversation_retention"] == 0
    assert Conversation.objects(conversation_id=old.conversation_id).count()

    settings.CONVERSATION_RETENTION_DAYS = 30
    assert nightly_cleanup()["conversation_retention"] == 1
    assert not Conversation.objects(conversation_id=old.conversation_id).count()
    assert Conversation.objects(conversation_id=recent.conversation_id).count()
    assert not KnowledgeBase.objects(knowledge_base_id=temp_db).count()  # its temporary KB with it
    assert not File.objects(knowledge_db_id=temp_db).count() and bucket_keys(f"kb/{temp_db}/") == []
