"""Reads; ownership is part of every query (another user's object is NotFound)."""

from django.conf import settings

from layra.errors import NotFound
from layra.sse import polling

from .documents import Chatflow, CustomNodes, Workflow, WorkflowRun
from .events import FINAL_EVENTS, events_read


def workflow_get(*, user, workflow_id: str) -> Workflow:
    wf = Workflow.objects(workflow_id=workflow_id, username=user.username, is_delete=False).first()
    if wf is None:
        raise NotFound("Workflow not found.")
    return wf


def workflow_list(*, user) -> list[Workflow]:
    return list(Workflow.objects(username=user.username, is_delete=False).order_by("-last_modify_at"))


def workflow_to_dict(wf: Workflow) -> dict:
    return {
        "workflow_id": wf.workflow_id, "workflow_name": wf.workflow_name, "nodes": wf.nodes, "edges": wf.edges,
        "start_node": wf.start_node, "global_variables": wf.global_variables,
        "workflow_config": wf.workflow_config, "version": wf.version, "created_at": wf.created_at,
        "last_modify_at": wf.last_modify_at,
    }


def workflow_export(*, user, workflow_id: str) -> dict:
    wf = workflow_get(user=user, workflow_id=workflow_id)
    return {"format": "layra-workflow/1", "workflow_name": wf.workflow_name, "nodes": wf.nodes, "edges": wf.edges,
            "start_node": wf.start_node, "global_variables": wf.global_variables,
            "workflow_config": wf.workflow_config}


def custom_nodes_get(*, user) -> dict:
    doc = CustomNodes.objects(username=user.username).first()
    return dict(doc.custom_nodes) if doc else {}


def run_get(*, user, run_id: str) -> WorkflowRun:
    run = WorkflowRun.objects(run_id=run_id, username=user.username).first()
    if run is None:
        raise NotFound("Run not found.")
    return run


def run_list(*, user, workflow_id: str) -> list[WorkflowRun]:
    workflow_get(user=user, workflow_id=workflow_id)
    return list(WorkflowRun.objects(username=user.username, workflow_id=workflow_id).order_by("-created_at")[:100])


def run_to_dict(run: WorkflowRun) -> dict:
    return {
        "run_id": run.run_id, "workflow_id": run.workflow_id, "status": run.status,
        "current_node": run.current_node, "completed_nodes": run.completed_nodes,
        "variables": {k: v for k, v in run.variables.items() if not k.startswith("_")},
        "outputs": run.outputs, "error": run.error or None, "pending_input": run.pending_input or None,
        "breakpoints": run.breakpoints, "steps": run.steps, "created_at": run.created_at,
        "started_at": run.started_at, "finished_at": run.finished_at,
    }


def run_events(*, user, run_id: str, start: int = 0):
    """Yield (index, event, data) until a final event for the current segment or WORKFLOW_SSE_MAX_SECONDS
    elapse (polled every WORKFLOW_SSE_POLL_SECONDS)."""
    run_get(user=user, run_id=run_id)
    for _ in polling(interval=settings.WORKFLOW_SSE_POLL_SECONDS, max_seconds=settings.WORKFLOW_SSE_MAX_SECONDS):
        batch = events_read(run_id=run_id, start=start)
        for index, event, data in batch:
            yield index, event, data
            if event in FINAL_EVENTS:
                return
        start += len(batch)


def chatflow_get(*, user, chatflow_id: str) -> Chatflow:
    cf = Chatflow.objects(chatflow_id=chatflow_id, username=user.username, is_delete=False).first()
    if cf is None:
        raise NotFound("Chatflow not found.")
    return cf


def chatflow_list(*, user, workflow_id: str | None = None) -> list[Chatflow]:
    qs = Chatflow.objects(username=user.username, is_delete=False)
    if workflow_id:
        qs = qs.filter(workflow_id=workflow_id)
    return list(qs.order_by("-last_modify_at"))


def chatflow_to_dict(cf: Chatflow, *, with_turns: bool = True) -> dict:
    out = {"chatflow_id": cf.chatflow_id, "workflow_id": cf.workflow_id, "chatflow_name": cf.chatflow_name,
           "created_at": cf.created_at, "last_modify_at": cf.last_modify_at}
    if with_turns:
        out["turns"] = [{"message_id": t.message_id, "user_message": t.user_message, "reply": t.reply,
                         "run_id": t.run_id, "status": t.status, "error": t.error, "created_at": t.created_at}
                        for t in cf.turns]
    return out
