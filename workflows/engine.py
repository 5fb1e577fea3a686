"""The workflow engine: executes a run's graph node by node, saving state after each node.

A run's durable state (queue of node ids, variables, status) lives in WorkflowRun; any worker can continue
a run from its queue. Pauses (breakpoints, human input) save and return; the run is re-enqueued on input.
What each node does is its type's (nodes/); the engine only walks the graph and keeps the run's limits.
"""

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from mongoengine.queryset.visitor import Q

from accounts.selectors import user_get_by_username
from chat.llm import ResolvedModel
from chat.selectors import model_resolve
from layra.heartbeat import beating
from layra.owner import owner_gone, owner_identity

from . import expressions
from .documents import RunStatus, WorkflowRun
from .events import event_emit
from .nodes.base import NodeError, Pause
from .nodes.registry import node_type_get, output_name

__all__ = ["Engine", "NodeError", "now", "run_claim", "run_execute"]


def now() -> datetime:
    return datetime.now(UTC)


def default_model_resolver(user, model_id: str | None) -> ResolvedModel:
    return model_resolve(user=user, model_id=model_id)


class Engine:
    def __init__(self, run: WorkflowRun, user, *, resolve_model: Callable | None = None):
        self.run = run
        self.user = user
        self.resolve_model = resolve_model or default_model_resolver
        snap = run.snapshot
        self.nodes = {n["id"]: n for n in snap["nodes"]}
        self.edges = snap["edges"]

    # -- what a node sees (nodes.base.RunContext) ----------------------------------------------------------------
    def emit(self, event: str, **data):
        event_emit(run_id=self.run.run_id, event=event, data=data)

    def successors(self, node_id: str, label: str | None = None) -> list[str]:
        return [e["target"] for e in self.edges
                if e["source"] == node_id and (label is None or e.get("label") == label)]

    def evaluate(self, expression: str):
        try:
            return expressions.evaluate(expression, self.run.variables)
        except expressions.ExpressionError as exc:
            raise NodeError(exc.message) from None

    def render(self, template: str) -> str:
        try:
            return expressions.render(template or "", self.run.variables)
        except expressions.ExpressionError as exc:
            raise NodeError(exc.message) from None

    def store(self, node: dict, value) -> None:
        self.run.variables[output_name(node)] = value

    # -- run state ----------------------------------------------------------------------------------------------
    def _cancelled(self) -> bool:
        fresh = WorkflowRun.objects(run_id=self.run.run_id).only("cancel_requested").first()
        return bool(fresh and fresh.cancel_requested)

    def _save(self):
        self.run.heartbeat_at = now()
        self.run.save()

    def finish(self, status: RunStatus, error: dict | None = None) -> None:
        self.run.status = status
        self.run.error = error or {}
        self.run.finished_at = now()
        self.run.current_node = None if status == RunStatus.SUCCEEDED else self.run.current_node
        self._save()
        self.emit("run_finished", status=status, error=self.run.error, outputs=self.run.outputs)

    def _fail_node(self, node: dict, message: str) -> None:
        self.emit("node_error", node_id=node["id"], type=node["type"], message=message)
        self.finish(RunStatus.FAILED, {"node_id": node["id"], "message": message})

    # -- main loop ----------------------------------------------------------------------------------------------
    def execute(self) -> str:
        run = self.run
        started = time.monotonic()
        if run.started_at is None:
            run.started_at = now()
            self.emit("run_started", workflow_id=run.workflow_id)
        while run.queue:
            stop = self._stop_reason(started)
            if stop is not None:
                self.finish(*stop)
                return run.status
            if not self._step(self.nodes[run.queue[0]]):
                return run.status
        self.finish(RunStatus.SUCCEEDED)
        return run.status

    def _stop_reason(self, started: float) -> tuple[RunStatus, dict] | None:
        """Why the run must end before its next node (cancelled, over a limit), or None to go on."""
        if self._cancelled():
            return RunStatus.CANCELLED, {"message": "Run cancelled."}
        if self.run.steps >= settings.WORKFLOW_MAX_STEPS:
            return RunStatus.FAILED, {"message": f"Run exceeded {settings.WORKFLOW_MAX_STEPS} steps."}
        if time.monotonic() - started > settings.WORKFLOW_MAX_RUN_SECONDS:
            return RunStatus.FAILED, {"message": f"Run exceeded {settings.WORKFLOW_MAX_RUN_SECONDS}s."}
        return None

    def _step(self, node: dict) -> bool:
        """Run the node at the head of the queue; False when the run stopped (paused, waiting or failed)."""
        run, node_id = self.run, node["id"]
        if node_id in run.breakpoints and run.skip_breakpoint != node_id:
            run.status, run.current_node = RunStatus.PAUSED, node_id
            self._save()
            self.emit("run_paused", node_id=node_id, reason="breakpoint")
            return False
        run.skip_breakpoint = None
        run.current_node = node_id
        self._save()
        self.emit("node_started", node_id=node_id, type=node["type"])
        try:
            nexts = self.execute_node(node)
        except Pause as pause:
            run.status = pause.status
            run.pending_input = pause.info
            self._save()
            self.emit("run_waiting_input", **pause.info)
            return False
        except NodeError as exc:
            self._fail_node(node, exc.message)
            return False
        size = len(json.dumps(run.variables, default=str))
        if size > settings.WORKFLOW_MAX_OUTPUT_BYTES:
            self._fail_node(node, f"Run variables exceed {settings.WORKFLOW_MAX_OUTPUT_BYTES} bytes.")
            return False
        run.output_bytes = size
        run.queue = run.queue[1:] + nexts
        run.steps += 1
        run.completed_nodes.append(node_id)
        self._save()
        output_var = output_name(node)
        self.emit("node_finished", node_id=node_id, type=node["type"],
                  output=run.variables.get(output_var) if output_var else None)
        return True

    def execute_node(self, node: dict) -> list[str]:
        """Each type's work is its registry class's."""
        node_type = node_type_get(node["type"])
        if node_type is None:
            raise NodeError(f"Unknown node type '{node['type']}'.")
        return node_type.execute(self, node, node.get("data", {}))


def run_claim(*, run_id: str) -> WorkflowRun | None:
    """Atomically take a run for execution: pending, or running but abandoned: its owner process is gone (same
    host) or its heartbeat is stale (a dead worker elsewhere)."""
    stale = now() - timedelta(seconds=settings.WORKFLOW_STUCK_AFTER_S)
    abandoned = Q(status=RunStatus.RUNNING) & Q(heartbeat_at__lt=stale)
    current = WorkflowRun.objects(run_id=run_id).only("status", "owner").first()
    if current is not None and current.status == RunStatus.RUNNING and current.owner and owner_gone(current.owner):
        abandoned |= Q(status=RunStatus.RUNNING) & Q(owner=current.owner)
    claimed = WorkflowRun.objects(Q(run_id=run_id) & (Q(status=RunStatus.PENDING) | abandoned)).update_one(
        set__status=RunStatus.RUNNING, set__heartbeat_at=now(), set__owner=owner_identity())
    if not claimed:
        return None
    return WorkflowRun.objects(run_id=run_id).first()


def _beat(run_id: str) -> None:
    WorkflowRun.objects(run_id=run_id, status=RunStatus.RUNNING, owner=owner_identity()).update_one(
        set__heartbeat_at=now())


def run_execute(*, run_id: str, resolve_model: Callable | None = None) -> str | None:
    """Claim and execute a run until it finishes or pauses. Returns the final status (None: not claimed)."""
    run = run_claim(run_id=run_id)
    if run is None:
        return None
    user = user_get_by_username(username=run.username)
    engine = Engine(run, user, resolve_model=resolve_model)
    if user is None:
        engine.finish(RunStatus.FAILED, {"message": "The run's owner no longer exists."})
        return run.status
    try:
        # A node may run for long (a model answer, a sandboxed script): the heartbeat does not wait for it.
        with beating(lambda: _beat(run_id), every=settings.WORKFLOW_STUCK_AFTER_S / 5, name=f"run {run_id}"):
            return engine.execute()
    except Exception as exc:  # a bug or a store failure: fail the run clean rather than leaving it running
        engine.finish(RunStatus.FAILED,
                      {"node_id": run.current_node, "message": f"Internal error: {type(exc).__name__}"})
        raise
