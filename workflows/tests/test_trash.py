"""A deleted workflow goes to the trash with its chatflows and comes back with them; a purge removes the workflow,
its chatflows, its runs and their events."""

from layra.redis import redis_client
from tests.workflows_helpers import chain, node
from workflows import services
from workflows.documents import Chatflow, Workflow, WorkflowRun
from workflows.events import events_key


def _workflow_with_chatflows(user):
    nodes, edges = chain(node("start", "start"), node("v", "variable", assignments={"reply": "'re: ' + user_message"}),
                         node("end", "end", outputs={"reply": "reply"}))
    wf = services.workflow_create(user=user, workflow_name="support", nodes=nodes, edges=edges,
                                  global_variables={"user_message": ""})
    kept = services.chatflow_create(user=user, workflow_id=wf.workflow_id, chatflow_name="kept")
    dropped = services.chatflow_create(user=user, workflow_id=wf.workflow_id, chatflow_name="dropped earlier")
    services.chatflow_delete(user=user, chatflow_id=dropped.chatflow_id)
    reply = services.chatflow_message(user=user, chatflow_id=kept.chatflow_id, message="hi")  # eager: a run
    return wf.workflow_id, kept.chatflow_id, dropped.chatflow_id, reply.run_id


def test_a_workflow_goes_to_the_trash_with_its_chatflows_and_comes_back_with_them(api_client, other_client, user):
    workflow_id, kept, dropped, _run = _workflow_with_chatflows(user)
    assert api_client.delete(f"/api/v1/workflows/{workflow_id}/").status_code == 204
    assert api_client.get(f"/api/v1/workflows/{workflow_id}/").status_code == 404
    assert api_client.get("/api/v1/workflows/").json()["count"] == 0
    assert api_client.get(f"/api/v1/chatflows/{kept}/").status_code == 404
    assert api_client.get("/api/v1/chatflows/").json()["count"] == 0
    trash = api_client.get("/api/v1/trash/").json()["results"]
    assert [(i["kind"], i["id"], i["name"]) for i in trash] == [("workflow", workflow_id, "support")]
    assert other_client.post(f"/api/v1/trash/workflow/{workflow_id}/restore/").status_code == 404

    assert api_client.post(f"/api/v1/trash/workflow/{workflow_id}/restore/").status_code == 200
    assert api_client.get(f"/api/v1/workflows/{workflow_id}/").status_code == 200
    chatflows = api_client.get("/api/v1/chatflows/").json()["results"]
    assert [c["chatflow_id"] for c in chatflows] == [kept]  # the one deleted before stays deleted
    assert len(api_client.get(f"/api/v1/chatflows/{kept}/").json()["turns"]) == 1
    assert api_client.get("/api/v1/trash/").json()["count"] == 0


def test_purging_a_workflow_removes_its_chatflows_runs_and_events(api_client, user):
    workflow_id, kept, dropped, run_id = _workflow_with_chatflows(user)
    assert redis_client("task").exists(events_key(run_id))
    assert api_client.delete(f"/api/v1/trash/workflow/{workflow_id}/").status_code == 404  # not in the trash
    assert api_client.delete(f"/api/v1/workflows/{workflow_id}/").status_code == 204
    assert api_client.delete(f"/api/v1/trash/workflow/{workflow_id}/").status_code == 204
    assert not Workflow.objects(workflow_id=workflow_id).count()
    assert not Chatflow.objects(chatflow_id__in=[kept, dropped]).count()
    assert not WorkflowRun.objects(workflow_id=workflow_id).count()
    assert not redis_client("task").exists(events_key(run_id))
    assert api_client.post(f"/api/v1/trash/workflow/{workflow_id}/restore/").status_code == 404
