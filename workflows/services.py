"""Writes: workflows (versioned saves), custom nodes, runs (start, input, cancel, stuck check), chatflows."""

import copy
import json
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings

from accounts.services import audit_log_record
from layra.errors import Conflict, NotFound, ValidationError
from layra.ids import new_id

from . import selectors, validation
from .documents import (
    RUN_TERMINAL,
    RUN_WAITING,
    Chatflow,
    ChatflowTurn,
    CustomNodes,
    RunStatus,
    TurnStatus,
    Workflow,
    WorkflowRun,
    utcnow,
)
from .enqueue import run_enqueue, run_enqueue_on_commit
from .events import event_emit
from .nodes.registry import CUSTOMISABLE_TYPES
from .trash import workflow_trash

MAX_DOCUMENT_BYTES = 2_000_000


def _check_size(**fields):
    if len(json.dumps(fields, default=str)) > MAX_DOCUMENT_BYTES:
        raise ValidationError("Workflow is too large.")


def _validated(*, user, nodes, edges, start_node) -> str:
    return validation.validate_graph(nodes=nodes, edges=edges, start_node=start_node,
                                     custom_nodes=selectors.custom_nodes_get(user=user))


def workflow_create(*, user, workflow_name: str, nodes: list, edges: list, start_node: str = "",
                    global_variables: dict | None = None, workflow_config: dict | None = None) -> Workflow:
    workflow_name = (workflow_name or "").strip()
    if not workflow_name:
        raise ValidationError("Workflow name is empty.")
    _check_size(nodes=nodes, edges=edges, global_variables=global_variables, workflow_config=workflow_config)
    start = _validated(user=user, nodes=nodes, edges=edges, start_node=start_node)
    wf = Workflow(workflow_id=new_id(), username=user.username, workflow_name=workflow_name, nodes=nodes,
                  edges=edges, start_node=start, global_variables=global_variables or {},
                  workflow_config=workflow_config or {})
    wf.save()
    audit_log_record(user=user, action="workflow.create", resource_type="workflow", resource_id=wf.workflow_id)
    return wf


def workflow_update(*, user, workflow_id: str, version: int, **fields) -> Workflow:
    """Save with optimistic locking: `version` must be the one the client read, else Conflict (409)."""
    wf = selectors.workflow_get(user=user, workflow_id=workflow_id)
    merged = {k: fields.get(k) if fields.get(k) is not None else getattr(wf, k)
              for k in ("workflow_name", "nodes", "edges", "start_node", "global_variables", "workflow_config")}
    if not str(merged["workflow_name"]).strip():
        raise ValidationError("Workflow name is empty.")
    _check_size(**merged)
    merged["start_node"] = _validated(user=user, nodes=merged["nodes"], edges=merged["edges"],
                                      start_node=merged["start_node"] if "start_node" in fields else "")
    updated = Workflow.objects(workflow_id=workflow_id, username=user.username, is_delete=False,
                               version=version).update_one(
        inc__version=1, set__last_modify_at=utcnow(), **{f"set__{k}": v for k, v in merged.items()})
    if not updated:
        raise Conflict("The workflow was changed since you loaded it; reload and retry.",
                       details={"current_version": wf.version})
    return selectors.workflow_get(user=user, workflow_id=workflow_id)


def workflow_delete(*, user, workflow_id: str) -> None:
    """To the trash with its chatflows; restored or purged later (workflows.trash)."""
    workflow_trash(user=user, workflow_id=workflow_id)


def workflow_duplicate(*, user, workflow_id: str, workflow_name: str | None = None) -> Workflow:
    wf = selectors.workflow_get(user=user, workflow_id=workflow_id)
    return workflow_create(user=user, workflow_name=workflow_name or f"{wf.workflow_name} (copy)",
                           nodes=copy.deepcopy(wf.nodes), edges=copy.deepcopy(wf.edges), start_node=wf.start_node,
                           global_variables=copy.deepcopy(wf.global_variables),
                           workflow_config=copy.deepcopy(wf.workflow_config))


def workflow_import(*, user, data: dict) -> Workflow:
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise ValidationError("Import data must be an exported workflow (an object with 'nodes').")
    return workflow_create(user=user, workflow_name=data.get("workflow_name") or "Imported workflow",
                           nodes=data["nodes"], edges=data.get("edges") or [], start_node=data.get("start_node", ""),
                           global_variables=data.get("global_variables") or {},
                           workflow_config=data.get("workflow_config") or {})


def custom_node_save(*, user, name: str, node_type: str, data: dict) -> dict:
    name = (name or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,100}", name):
        raise ValidationError("Custom node name must be 1-100 letters, digits, '-' or '_'.")
    if node_type not in CUSTOMISABLE_TYPES:
        raise ValidationError(f"Node type '{node_type}' cannot be saved as a custom node.")
    validation.validate_node_config(name, node_type, data or {})
    config = {"type": node_type, "data": data or {}}
    CustomNodes.objects(username=user.username).update_one(upsert=True, **{f"set__custom_nodes__{name}": config})
    return config


def custom_node_delete(*, user, name: str) -> None:
    if name not in selectors.custom_nodes_get(user=user):
        raise NotFound("Custom node not found.")
    CustomNodes.objects(username=user.username).update_one(**{f"unset__custom_nodes__{name}": True})


def _expand_custom(*, user, nodes: list) -> list:
    saved = selectors.custom_nodes_get(user=user)
    out = []
    for node in nodes:
        if node["type"] == "custom":
            config = saved.get(node["data"]["name"])
            if config is None:
                raise ValidationError(f"Node '{node['id']}': no saved custom node named '{node['data']['name']}'.",
                                      details={"node_id": node["id"]})
            data = {**config["data"], **{k: v for k, v in node["data"].items() if k != "name"}}
            node = {**node, "type": config["type"], "data": data, "custom_name": node["data"]["name"]}
        out.append(node)
    return out


def run_create(*, user, wf: Workflow, inputs: dict, breakpoints: list[str], chatflow_turn: dict | None = None
               ) -> WorkflowRun:
    if not isinstance(inputs, dict):
        raise ValidationError("'inputs' must be an object.")
    ids = {n["id"] for n in wf.nodes}
    unknown = [b for b in breakpoints if b not in ids]
    if unknown:
        raise ValidationError(f"Breakpoint node '{unknown[0]}' is not in the workflow.",
                              details={"node_id": unknown[0]})
    bad = [k for k in inputs if not isinstance(k, str) or k.startswith("_")]
    if bad:
        raise ValidationError(f"Input name '{bad[0]}' is not allowed.")
    nodes = _expand_custom(user=user, nodes=wf.nodes)
    run = WorkflowRun(
        run_id=new_id(), workflow_id=wf.workflow_id, username=user.username, status=RunStatus.PENDING,
        snapshot={"nodes": nodes, "edges": wf.edges, "start_node": wf.start_node, "version": wf.version,
                  "workflow_config": wf.workflow_config},
        variables={**wf.global_variables, **inputs}, queue=[wf.start_node], breakpoints=breakpoints,
        chatflow_turn=chatflow_turn or {},
    )
    run.save()
    return run


def run_start(*, user, workflow_id: str, inputs: dict | None = None, breakpoints: list[str] | None = None
              ) -> WorkflowRun:
    wf = selectors.workflow_get(user=user, workflow_id=workflow_id)
    run = run_create(user=user, wf=wf, inputs=inputs or {}, breakpoints=breakpoints or [])
    event_emit(run_id=run.run_id, event="run_queued", data={"workflow_id": workflow_id})
    run_enqueue_on_commit(run.run_id)
    audit_log_record(user=user, action="workflow.run", resource_type="workflow", resource_id=workflow_id,
                     details={"run_id": run.run_id})
    return run


def run_input(*, user, run_id: str, action: str, value=None) -> WorkflowRun:
    """Resume a paused run: {"action": "continue"} past a breakpoint, {"action": "answer", "value"} for input."""
    run = selectors.run_get(user=user, run_id=run_id)
    if action == "continue":
        if run.status != RunStatus.PAUSED:
            raise Conflict(f"Run is {run.status}, not paused at a breakpoint.")
        updated = WorkflowRun.objects(run_id=run_id, status=RunStatus.PAUSED).update_one(
            set__status=RunStatus.PENDING, set__skip_breakpoint=run.current_node)
    elif action == "answer":
        if run.status != RunStatus.WAITING_INPUT:
            raise Conflict(f"Run is {run.status}, not waiting for input.")
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise ValidationError("'value' must be JSON.") from None
        if len(json.dumps(value)) > 100_000:
            raise ValidationError("'value' is too large.")
        pending = {**run.pending_input, "answer": value}
        updated = WorkflowRun.objects(run_id=run_id, status=RunStatus.WAITING_INPUT).update_one(
            set__status=RunStatus.PENDING, set__pending_input=pending,
            set__skip_breakpoint=run.pending_input.get("node_id"))
    else:
        raise ValidationError("'action' must be 'continue' or 'answer'.")
    if not updated:
        raise Conflict("The run changed state; reload and retry.")
    event_emit(run_id=run_id, event="run_resumed", data={"action": action})
    run_enqueue_on_commit(run.run_id)
    return selectors.run_get(user=user, run_id=run_id)


def run_cancel(*, user, run_id: str) -> WorkflowRun:
    run = selectors.run_get(user=user, run_id=run_id)
    if run.status in RUN_TERMINAL:
        raise Conflict(f"Run already {run.status}.")
    WorkflowRun.objects(run_id=run_id).update_one(set__cancel_requested=True)
    # A run no worker holds (queued, paused, waiting) is cancelled now; a running one stops at its next node.
    if WorkflowRun.objects(run_id=run_id, status__in=[RunStatus.PENDING, *RUN_WAITING]).update_one(
            set__status=RunStatus.CANCELLED, set__finished_at=utcnow(), set__error={"message": "Run cancelled."}):
        event_emit(run_id=run_id, event="run_finished", data={"status": RunStatus.CANCELLED,
                                                               "error": {"message": "Run cancelled."}})
    return selectors.run_get(user=user, run_id=run_id)


def runs_check_stuck() -> dict:
    """For beat: a run whose worker died (running, stale heartbeat) is re-enqueued or failed clean."""
    stale = utcnow() - timedelta(seconds=settings.WORKFLOW_STUCK_AFTER_S)
    resumed, failed = 0, 0
    for run in WorkflowRun.objects(status=RunStatus.RUNNING, heartbeat_at__lt=stale):
        if run.resumes >= settings.WORKFLOW_MAX_RESUMES:
            failed += _run_fail_if(run, "The worker running this run stopped.", heartbeat_at__lt=stale)
        elif WorkflowRun.objects(run_id=run.run_id, status=RunStatus.RUNNING, heartbeat_at__lt=stale).update_one(
                set__status=RunStatus.PENDING, inc__resumes=1):
            event_emit(run_id=run.run_id, event="run_resumed", data={"action": "recover",
                                                                      "node_id": run.current_node})
            run_enqueue(run.run_id)
            resumed += 1
    return {"resumed": resumed, "failed": failed}


def run_fail_over_time_limit(*, run_id: str) -> None:
    """The worker's time limit stopped a run mid-node: fail it clean."""
    run = WorkflowRun.objects(run_id=run_id).first()
    if run is not None:
        _run_fail_if(run, "Run exceeded its time limit.")


def _run_fail_if(run: WorkflowRun, message: str, **still) -> bool:
    """Fail a run still running (and matching `still`); its chatflow turn, if any, is recorded."""
    if not WorkflowRun.objects(run_id=run.run_id, status=RunStatus.RUNNING, **still).update_one(
            set__status=RunStatus.FAILED, set__finished_at=utcnow(),
            set__error={"node_id": run.current_node, "message": message}):
        return False
    event_emit(run_id=run.run_id, event="run_finished",
               data={"status": RunStatus.FAILED, "error": {"message": message}})
    chatflow_turn_record(run_id=run.run_id)
    return True


def chatflow_create(*, user, workflow_id: str, chatflow_name: str = "") -> Chatflow:
    selectors.workflow_get(user=user, workflow_id=workflow_id)
    cf = Chatflow(chatflow_id=new_id(), workflow_id=workflow_id, username=user.username,
                  chatflow_name=(chatflow_name or "").strip()[:200])
    cf.save()
    return cf


def chatflow_delete(*, user, chatflow_id: str) -> None:
    cf = selectors.chatflow_get(user=user, chatflow_id=chatflow_id)
    Chatflow.objects(pk=cf.pk).update_one(set__is_delete=True, set__deleted_at=utcnow())


@dataclass(frozen=True)
class ChatflowReply:
    """A chatflow message's outcome: its turn, or (the run still going past the wait) the run to follow."""

    run_id: str
    status: str
    turn: ChatflowTurn | None = None


REPLY_POLL_S = 0.1


def chatflow_message(*, user, chatflow_id: str, message: str) -> ChatflowReply:
    """Run the bound workflow on a worker with `user_message` and `history`; wait up to CHATFLOW_REPLY_TIMEOUT_S.

    The turn is recorded when the run ends, by whichever of this request and the worker sees the end first.
    """
    message = (message or "").strip()
    if not message:
        raise ValidationError("Message is empty.")
    if len(message) > 50_000:
        raise ValidationError("Message is too long.")
    cf = selectors.chatflow_get(user=user, chatflow_id=chatflow_id)
    wf = selectors.workflow_get(user=user, workflow_id=cf.workflow_id)
    history = [{"user": t.user_message, "assistant": t.reply} for t in cf.turns[-10:]]
    run = run_create(user=user, wf=wf, inputs={"user_message": message, "history": history}, breakpoints=[],
                     chatflow_turn={"chatflow_id": cf.chatflow_id, "message_id": new_id(), "user_message": message})
    # Not on commit: the run lives in Mongo (no row for the worker to miss), and this request waits for the
    # answer itself; a caller's open transaction would hold an on-commit enqueue until after the wait.
    run_enqueue(run.run_id)
    status = _run_wait(run_id=run.run_id, timeout_s=settings.CHATFLOW_REPLY_TIMEOUT_S)
    turn = chatflow_turn_record(run_id=run.run_id)
    return ChatflowReply(run_id=run.run_id, status=status, turn=turn)


def _run_wait(*, run_id: str, timeout_s: float) -> str:
    """Poll the run until it ends or waits for a person, or timeout_s passes; return its last status."""
    deadline = time.monotonic() + timeout_s
    while True:
        run = WorkflowRun.objects(run_id=run_id).only("status").first()
        if run.status in RUN_TERMINAL or run.status in RUN_WAITING or time.monotonic() >= deadline:
            return run.status
        time.sleep(REPLY_POLL_S)


def chatflow_turn_record(*, run_id: str) -> ChatflowTurn | None:
    """Record the chatflow turn of an ended run, once (safe to call twice, from the request and the worker).

    Returns the recorded turn; None for a run still going or not a chatflow's.
    """
    run = WorkflowRun.objects(run_id=run_id).first()
    meta = run.chatflow_turn if run is not None else None
    if not meta:
        return None
    if run.status in RUN_WAITING:
        error = "Chatflow workflows cannot wait for input."
        WorkflowRun.objects(run_id=run_id, status=run.status).update_one(
            set__status=RunStatus.FAILED, set__finished_at=utcnow(), set__error={"message": error})
        run.reload()
    if run.status not in RUN_TERMINAL:
        return None
    Chatflow.objects(chatflow_id=meta["chatflow_id"], turns__message_id__ne=meta["message_id"]).update_one(
        push__turns=_turn_of(run, meta), set__last_modify_at=utcnow())
    cf = Chatflow.objects(chatflow_id=meta["chatflow_id"]).only("turns").first()
    return next((t for t in cf.turns if t.message_id == meta["message_id"]), None) if cf else None


def _turn_of(run: WorkflowRun, meta: dict) -> ChatflowTurn:
    succeeded = run.status == RunStatus.SUCCEEDED
    reply = run.outputs.get("reply")
    if reply is None:
        reply = run.variables.get("reply", "")
    return ChatflowTurn(message_id=meta["message_id"], user_message=meta["user_message"],
                        reply=str(reply) if succeeded else "", run_id=run.run_id,
                        status=TurnStatus.SUCCEEDED if succeeded else TurnStatus.FAILED,
                        error=None if succeeded else (run.error or {}).get("message", "Run failed."))
