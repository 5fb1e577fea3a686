"""Account deletion: `DELETE auth/me/` (password) and the admin action deactivate at once; the cascade removes
everything of the user from every store, checked store by store, and leaves another user's data alone."""

import pytest
from django.conf import settings

from accounts import services as account_services
from accounts.models import AccountDeletion, ApiKey, AuditLog, LoginSession, RefreshToken, User
from chat import services as chat_services
from embeddings.services import user_index_rows
from knowledge import samples
from knowledge.documents import File, KnowledgeBase
from knowledge.models import IngestionJob
from knowledge.services import files_upload, knowledge_base_create
from layra.mongo import database
from layra.redis import redis_client
from operations.account_deletion import account_data_delete, account_delete_run
from tests.knowledge_helpers import bucket_keys, file_vectors, uploaded
from tests.workflows_helpers import chain, node
from workflows import services as workflow_services

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory


def _ingested_kb(user, name: str, text: str, *, capture) -> tuple[str, str]:
    kb = knowledge_base_create(user=user, name=name)
    with capture(execute=True):  # the ingestion task runs eagerly on commit
        file = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                            uploaded_files=[uploaded(f"{name}.pdf", samples.make_pdf([text, text + " again"]))])[0]
    file.reload()
    assert file.status == "completed" and file.page_count == 2, file.error
    return kb.knowledge_base_id, file.file_id


def _everything(user, client, capture) -> dict:
    """A user with data in every store: KBs (one trashed), a conversation with its temporary KB, model config,
    workflow, chatflow with a run, custom node, API key, login session, audit entries, caches, rate limits."""
    kb_id, file_id = _ingested_kb(user, f"{user.username}-kb", f"Volcanoes of {user.username} erupt", capture=capture)
    trashed_id, _ = _ingested_kb(user, f"{user.username}-trash", "Glaciers carve valleys", capture=capture)
    KnowledgeBase.objects(knowledge_base_id=trashed_id).update_one(set__is_delete=True)  # in the trash, not purged
    conversation = chat_services.conversation_create(user=user, conversation_name="Chat")
    with capture(execute=True):
        chat_services.conversation_files_upload(user=user, conversation_id=conversation.conversation_id,
                                                uploaded_files=[uploaded("c.pdf", samples.make_pdf(["Chat file"]))])
    chat_services.model_create(user=user, model_name="m", model_url="https://api.example.com/v1",
                               api_key="sk-1234567890")
    nodes, edges = chain(node("start", "start"), node("v", "variable", assignments={"reply": "'re: ' + user_message"}),
                         node("end", "end", outputs={"reply": "reply"}))
    wf = workflow_services.workflow_create(user=user, workflow_name="wf", nodes=nodes, edges=edges,
                                           global_variables={"user_message": ""})
    cf = workflow_services.chatflow_create(user=user, workflow_id=wf.workflow_id)
    reply = workflow_services.chatflow_message(user=user, chatflow_id=cf.chatflow_id, message="hi")
    workflow_services.custom_node_save(user=user, name="greet", node_type="variable",
                                       data={"assignments": {"g": "'hi'"}})
    assert client.post("/api/v1/search/", {"query": "volcanoes", "knowledge_base_ids": [kb_id]},
                       format="json").json()["results"]
    assert client.get("/api/v1/knowledge-bases/").status_code == 200
    temp_id = KnowledgeBase.objects(username=user.username, is_temp=True).first().knowledge_base_id
    return {"kb_ids": [kb_id, trashed_id, temp_id], "file_id": file_id, "run_id": reply.run_id,
            "task_ids": list(IngestionJob.objects.filter(user=user).values_list("task_id", flat=True))}


def _redis_keys() -> list[str]:
    return [f"{purpose}/{key}" for purpose in settings.REDIS_DBS if purpose != "broker"
            for key in redis_client(purpose).scan_iter(count=1000)]


def _login(client, username: str) -> dict:
    response = client.post("/api/v1/auth/login/", {"username": username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_wrong_or_missing_password_is_400_and_the_account_stays(api_client, user):
    for body in ({"password": "not-the-password"}, {}, {"password": ""}):
        response = api_client.delete("/api/v1/auth/me/", body, format="json")
        assert response.status_code == 400, response.content
    user.refresh_from_db()
    assert user.is_active and not AccountDeletion.objects.exists()


def test_account_deletion_leaves_nothing_of_the_user_in_any_store(
    api_client, other_client, user, other_user, anon_client, django_capture_on_commit_callbacks, index_stack,
):
    capture = django_capture_on_commit_callbacks
    mine = _everything(user, api_client, capture)
    theirs = _everything(other_user, other_client, capture)
    pair = _login(anon_client, user.username)
    _record, key = account_services.api_key_create(user=user, name="cli")
    pk, username = user.pk, user.username
    # An operator's action about the user: it keeps its actor, not the user's name.
    account_services.audit_log_record(user=other_user, action="session.revoke", resource_type="session",
                                      resource_id="s-1", details={"owner": username})

    with capture() as callbacks:
        anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
        response = anon_client.delete("/api/v1/auth/me/", {"password": PASSWORD}, format="json")
    assert response.status_code == 202, response.content
    assert len(callbacks) == 1  # the cascade, enqueued by name on commit; not run yet
    assert AccountDeletion.objects.get(user_ref=pk).state == "queued"
    # Before the cascade runs, the access token, the refresh token and the API key stopped working.
    assert anon_client.get("/api/v1/auth/me/").status_code == 401
    anon_client.credentials()
    assert anon_client.post("/api/v1/auth/refresh/", {"refresh": pair["refresh"]}, format="json").status_code == 401
    anon_client.credentials(HTTP_X_API_KEY=key)
    assert anon_client.get("/api/v1/knowledge-bases/").status_code == 401
    assert User.objects.filter(pk=pk, is_active=False).exists()
    callbacks[0]()  # the worker runs the cascade (eagerly here)

    deletion = AccountDeletion.objects.get(user_ref=pk)
    assert deletion.state == "completed" and deletion.username == "" and deletion.counts["knowledge_bases"] == 3
    # MySQL: the user row, sessions, tokens, keys, jobs gone; the audit log keeps entries without the name.
    assert not User.objects.filter(pk=pk).exists()
    for model in (LoginSession, RefreshToken, ApiKey, IngestionJob):
        assert not model.objects.filter(user_id=pk).exists(), model
    assert not AuditLog.objects.filter(username=username).exists()
    assert not AuditLog.objects.filter(resource_id=username).exists()
    assert not [e for e in AuditLog.objects.all() if username in str(e.details)]
    assert AuditLog.objects.filter(action="account.delete", resource_id=str(pk)).exists()
    assert AuditLog.objects.filter(username=other_user.username).exists()
    about = AuditLog.objects.get(action="session.revoke", resource_id="s-1")
    assert about.username == other_user.username and about.details == {}
    # Mongo: no document of the user's in any collection; the KBs and files are gone by id too.
    db = database()
    for name in db.list_collection_names():
        assert db[name].count_documents({"username": username}) == 0, name
    assert not KnowledgeBase.objects(knowledge_base_id__in=mine["kb_ids"]).count()
    assert not File.objects(knowledge_db_id__in=mine["kb_ids"]).count()
    # Milvus (this stack's dense collection and lexical index): no row of the user's.
    assert user_index_rows(username=username) == 0
    for kb_id in mine["kb_ids"]:
        assert not file_vectors(kb_id, mine["file_id"])
    # S3: no object under the user's KBs.
    for kb_id in mine["kb_ids"]:
        assert bucket_keys(f"kb/{kb_id}/") == []
    # Redis: no key names the user, their KBs, jobs or runs; no cached search holds their pages.
    names = [username, f"user:{pk}:", mine["run_id"], *mine["kb_ids"], *mine["task_ids"]]
    assert not [k for k in _redis_keys() if any(n in k for n in names)]
    cache = redis_client("cache")
    assert not [k for k in cache.scan_iter(match="search:*") if mine["file_id"] in (cache.get(k) or "")]

    # The other user is untouched: their data in every store, and their search still answers.
    assert user_index_rows(username=other_user.username) > 0
    assert all(bucket_keys(f"kb/{kb_id}/") for kb_id in theirs["kb_ids"])
    for name in ("conversations", "workflows", "chatflows", "model_config", "nodes", "workflow_runs"):
        assert db[name].count_documents({"username": other_user.username}) >= 1, name
    hits = other_client.post("/api/v1/search/", {"query": "volcanoes", "knowledge_base_ids": [theirs["kb_ids"][0]]},
                             format="json").json()["results"]
    assert hits and hits[0]["file_id"] == theirs["file_id"]

    # Safe to run twice: the job is not run again, and the cascade itself finds nothing more.
    assert account_delete_run(deletion_id=deletion.pk).state == "completed"
    again = account_data_delete(user_pk=pk, username=username)
    assert again["mongo_documents"] == 0 and again["user_rows"] == 0 and again["knowledge_bases"] == 0


def test_admin_action_deletes_the_account_and_operators_see_the_job(
    admin_client, user, api_client, django_capture_on_commit_callbacks,
):
    kb_id, _file_id = _ingested_kb(user, "kb", "Volcanoes erupt", capture=django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/admin/accounts/user/", {"action": "delete_accounts",
                                                               "_selected_action": [user.pk]})
    assert response.status_code == 302
    deletion = AccountDeletion.objects.get(user_ref=user.pk)
    assert deletion.requested_by == "admin" and deletion.state == "completed"
    assert not User.objects.filter(pk=user.pk).exists() and bucket_keys(f"kb/{kb_id}/") == []
    page = admin_client.get("/admin/accounts/accountdeletion/")
    assert page.status_code == 200 and deletion.deletion_id in page.content.decode()
    # A bare row delete (which would leave every other store behind) is not offered.
    assert admin_client.get(f"/admin/accounts/user/{User.objects.get(username='admin').pk}/delete/").status_code == 403


def test_a_view_only_operator_cannot_run_the_deletion_actions(client, user):
    from django.contrib.auth.models import Permission

    viewer = User.objects.create_user("viewer", None, "viewer-long-password-1", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_user"),
                                Permission.objects.get(codename="view_accountdeletion"))
    client.force_login(viewer)
    page = client.get("/admin/accounts/user/")
    assert page.status_code == 200 and "delete_accounts" not in page.content.decode()
    client.post("/admin/accounts/user/", {"action": "delete_accounts", "_selected_action": [user.pk]})
    user.refresh_from_db()
    assert user.is_active and not AccountDeletion.objects.exists()
