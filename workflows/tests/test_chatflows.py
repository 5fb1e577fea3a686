"""Chatflow messages run on the Celery path: answered within the wait, or 202 and the turn recorded later."""


from tests.waiting import eventually
from tests.workflows_helpers import chain, node
from workflows import selectors, services
from workflows.documents import Chatflow, WorkflowRun


def _chatflow(user, *nodes):
    graph_nodes, edges = chain(*nodes)
    wf = services.workflow_create(user=user, workflow_name="chat", nodes=graph_nodes, edges=edges,
                                  global_variables={"user_message": ""})
    return services.chatflow_create(user=user, workflow_id=wf.workflow_id)


def test_a_turn_is_recorded_once_however_often_the_run_end_is_seen(user):
    cf = _chatflow(user, node("start", "start"), node("v", "variable", assignments={"reply": "'re: ' + user_message"}),
                   node("end", "end", outputs={"reply": "reply"}))
    reply = services.chatflow_message(user=user, chatflow_id=cf.chatflow_id, message="hi")  # eager: the task ran
    assert reply.turn is not None and reply.turn.reply == "re: hi" and reply.status == "succeeded"
    again = services.chatflow_turn_record(run_id=reply.run_id)  # the worker's call after the request's
    assert again.message_id == reply.turn.message_id
    turns = selectors.chatflow_get(user=user, chatflow_id=cf.chatflow_id).turns
    assert [(t.user_message, t.reply, t.run_id) for t in turns] == [("hi", "re: hi", reply.run_id)]


def test_a_chatflow_run_that_waits_for_input_fails_its_turn(user):
    cf = _chatflow(user, node("start", "start"), node("ask", "human_input", variable="name"), node("end", "end"))
    reply = services.chatflow_message(user=user, chatflow_id=cf.chatflow_id, message="hi")
    assert reply.turn.status == "failed" and reply.turn.error == "Chatflow workflows cannot wait for input."
    run = WorkflowRun.objects.get(run_id=reply.run_id)
    assert run.status == "failed" and run.finished_at is not None
    assert len(Chatflow.objects.get(chatflow_id=cf.chatflow_id).turns) == 1


def test_a_run_that_is_not_a_chatflows_records_no_turn(user):
    nodes, edges = chain(node("start", "start"), node("end", "end"))
    wf = services.workflow_create(user=user, workflow_name="plain", nodes=nodes, edges=edges)
    run = services.run_create(user=user, wf=wf, inputs={}, breakpoints=[])
    assert services.chatflow_turn_record(run_id=run.run_id) is None


def _turns(client, chatflow_id):
    return client.get(f"/api/v1/chatflows/{chatflow_id}/").json()["turns"]


def test_messages_through_a_worker_answer_in_time_or_202_then_record_the_turn(celery_worker, api_client, llm_server,
                                                                             settings):
    resp = api_client.post("/api/v1/models/", {"model_name": "tiny", "model_url": llm_server.url, "api_key": "sk-1",
                                               "select": True}, format="json")
    assert resp.status_code == 201, resp.json()
    nodes, edges = chain(node("start", "start"), node("llm", "llm", prompt="{{ user_message }}"),
                         node("end", "end", outputs={"reply": "llm"}))
    wf = api_client.post("/api/v1/workflows/", {"workflow_name": "w", "nodes": nodes, "edges": edges,
                                                "global_variables": {"user_message": ""}}, format="json").json()
    chatflow_id = api_client.post("/api/v1/chatflows/", {"workflow_id": wf["workflow_id"]},
                                  format="json").json()["chatflow_id"]
    url = f"/api/v1/chatflows/{chatflow_id}/messages/"

    answered = api_client.post(url, {"message": "hello there"}, format="json")  # the worker answers within 60 s
    assert answered.status_code == 201, (answered.json(), celery_worker.log()[-2000:])
    assert answered.json()["reply"] == "Echo: hello there" and answered.json()["status"] == "succeeded"

    settings.CHATFLOW_REPLY_TIMEOUT_S = 0
    llm_server.latency = 2.0  # the model takes longer than the request waits
    pending = api_client.post(url, {"message": "slow one"}, format="json")
    assert pending.status_code == 202, pending.json()
    body = pending.json()
    assert set(body) == {"run_id", "status"} and body["status"] in ("pending", "running")
    assert [t["user_message"] for t in _turns(api_client, chatflow_id)] == ["hello there"]

    turns = eventually(lambda: _turns(api_client, chatflow_id), until=lambda t: len(t) >= 2,
                       context=lambda: celery_worker.log()[-3000:])
    assert turns[1]["run_id"] == body["run_id"] and turns[1]["reply"] == "Echo: slow one"
    assert turns[1]["status"] == "succeeded"
    assert api_client.get(f"/api/v1/runs/{body['run_id']}/").json()["status"] == "succeeded"
    assert len(_turns(api_client, chatflow_id)) == 2
