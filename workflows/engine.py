"""The workflow engine: executes a run's graph node by node, saving state after each node.

A run's durable state (queue of node ids, variables, status) lives in WorkflowRun; any worker can continue
a run from its queue. Pauses (breakpoints, human input) save and return; the run is re-enqueued on input.
"""

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from mongoengine.queryset.visitor import Q

from chat.llm import LLMError, ResolvedModel, stream_chat

from . import expressions, httpguard, sandbox
from .documents import WorkflowRun
from .events import event_emit

TERMINAL = {"succeeded", "failed", "cancelled"}


class NodeError(Exception):
    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class _Pause(Exception):
    def __init__(self, status: str, info: dict):
        self.status, self.info = status, info


def now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def default_model_resolver(user, model_id: str | None) -> ResolvedModel:
    from chat.selectors import model_resolve

    return model_resolve(user=user, model_id=model_id)


def _public_vars(variables: dict) -> dict:
    return {k: v for k, v in variables.items() if not k.startswith("_")}


class Engine:
    def __init__(self, run: WorkflowRun, user, *, resolve_model: Callable | None = None):
        self.run = run
        self.user = user
        self.resolve_model = resolve_model or default_model_resolver
        snap = run.snapshot
        self.nodes = {n["id"]: n for n in snap["nodes"]}
        self.edges = snap["edges"]

    # -- helpers ------------------------------------------------------------------------------------
    def emit(self, event: str, **data):
        event_emit(run_id=self.run.run_id, event=event, data=data)

    def successors(self, node_id: str, label: str | None = None) -> list[str]:
        return [e["target"] for e in self.edges
                if e["source"] == node_id and (label is None or e.get("label") == label)]

    def _eval(self, node_id: str, expression: str):
        try:
            return expressions.evaluate(expression, self.run.variables)
        except expressions.ExpressionError as exc:
            raise NodeError(exc.message) from None

    def _render(self, template: str) -> str:
        try:
            return expressions.render(template or "", self.run.variables)
        except expressions.ExpressionError as exc:
            raise NodeError(exc.message) from None

    def _cancelled(self) -> bool:
        fresh = WorkflowRun.objects(run_id=self.run.run_id).only("cancel_requested").first()
        return bool(fresh and fresh.cancel_requested)

    def _save(self):
        self.run.heartbeat_at = now()
        self.run.save()

    def _finish(self, status: str, error: dict | None = None):
        self.run.status = status
        self.run.error = error or {}
        self.run.finished_at = now()
        self.run.current_node = None if status == "succeeded" else self.run.current_node
        self._save()
        self.emit("run_finished", status=status, error=self.run.error, outputs=self.run.outputs)

    # -- main loop ----------------------------------------------------------------------------------
    def execute(self) -> str:
        run = self.run
        started = time.monotonic()
        if run.started_at is None:
            run.started_at = now()
            self.emit("run_started", workflow_id=run.workflow_id)
        while run.queue:
            if self._cancelled():
                self._finish("cancelled", {"message": "Run cancelled."})
                return run.status
            if run.steps >= settings.WORKFLOW_MAX_STEPS:
                self._finish("failed", {"message": f"Run exceeded {settings.WORKFLOW_MAX_STEPS} steps."})
                return run.status
            if time.monotonic() - started > settings.WORKFLOW_MAX_RUN_SECONDS:
                self._finish("failed", {"message": f"Run exceeded {settings.WORKFLOW_MAX_RUN_SECONDS}s."})
                return run.status
            node_id = run.queue[0]
            node = self.nodes[node_id]
            if node_id in run.breakpoints and run.skip_breakpoint != node_id:
                run.status, run.current_node = "paused", node_id
                self._save()
                self.emit("run_paused", node_id=node_id, reason="breakpoint")
                return run.status
            run.skip_breakpoint = None
            run.current_node = node_id
            self._save()
            self.emit("node_started", node_id=node_id, type=node["type"])
            try:
                nexts = self.execute_node(node)
            except _Pause as pause:
                run.status = pause.status
                run.pending_input = pause.info
                self._save()
                self.emit("run_waiting_input", **pause.info)
                return run.status
            except NodeError as exc:
                self.emit("node_error", node_id=node_id, type=node["type"], message=exc.message)
                self._finish("failed", {"node_id": node_id, "message": exc.message})
                return run.status
            size = len(json.dumps(run.variables, default=str))
            if size > settings.WORKFLOW_MAX_OUTPUT_BYTES:
                message = f"Run variables exceed {settings.WORKFLOW_MAX_OUTPUT_BYTES} bytes."
                self.emit("node_error", node_id=node_id, type=node["type"], message=message)
                self._finish("failed", {"node_id": node_id, "message": message})
                return run.status
            run.output_bytes = size
            run.queue = run.queue[1:] + nexts
            run.steps += 1
            run.completed_nodes.append(node_id)
            self._save()
            output_var = self._output_name(node)
            self.emit("node_finished", node_id=node_id, type=node["type"],
                      output=run.variables.get(output_var) if output_var else None)
        self._finish("succeeded")
        return run.status

    @staticmethod
    def _output_name(node: dict) -> str | None:
        if node["type"] in ("start", "end", "condition", "loop", "human_input", "variable"):
            return None
        return node.get("data", {}).get("output_variable") or node["id"]

    # -- node types ---------------------------------------------------------------------------------
    def execute_node(self, node: dict) -> list[str]:
        handler = getattr(self, f"node_{node['type']}", None)
        if handler is None:
            raise NodeError(f"Unknown node type '{node['type']}'.")
        return handler(node, node.get("data", {}))

    def _store(self, node, value):
        self.run.variables[self._output_name(node)] = value

    def node_start(self, node, data):
        return self.successors(node["id"])

    def node_end(self, node, data):
        for name, expression in (data.get("outputs") or {}).items():
            self.run.outputs[name] = self._eval(node["id"], expression)
        if not data.get("outputs"):
            self.run.outputs.update(_public_vars(self.run.variables))
        return []

    def node_variable(self, node, data):
        for name, expression in data["assignments"].items():
            self.run.variables[name] = self._eval(node["id"], expression)
        return self.successors(node["id"])

    def node_condition(self, node, data):
        result = bool(self._eval(node["id"], data["expression"]))
        self.run.variables.setdefault("_branches", {})[node["id"]] = result
        return self.successors(node["id"], "true" if result else "false")

    def node_loop(self, node, data):
        loops = self.run.variables.setdefault("_loops", {})
        state = loops.get(node["id"])
        max_it = min(int(data.get("max_iterations", 100)), settings.WORKFLOW_LOOP_MAX_ITERATIONS)
        if state is None:
            if "items" in data:
                items = self._eval(node["id"], data["items"])
                if not isinstance(items, list | tuple | str | dict):
                    raise NodeError("Loop 'items' must evaluate to a list.")
                items = list(items)
            else:
                items = list(range(int(data["count"])))
            if len(items) > max_it:
                raise NodeError(f"Loop has {len(items)} items, more than max_iterations ({max_it}).")
            state = {"items": items, "index": 0}
        if state["index"] >= len(state["items"]):
            loops.pop(node["id"], None)
            return self.successors(node["id"], "done")
        self.run.variables[data.get("item_variable", "item")] = state["items"][state["index"]]
        self.run.variables[data.get("index_variable", "index")] = state["index"]
        state["index"] += 1
        loops[node["id"]] = state
        return self.successors(node["id"], "body")

    def node_code(self, node, data):
        inputs = {name: self._eval(node["id"], expr) for name, expr in (data.get("inputs") or {}).items()} \
            if data.get("inputs") else json.loads(json.dumps(_public_vars(self.run.variables), default=str))
        try:
            limit = settings.WORKFLOW_CODE_TIMEOUT_S
            timeout = min(float(data.get("timeout_s") or limit), limit)
            result = sandbox.run_code(code=data["code"], inputs=inputs, timeout_s=timeout)
        except sandbox.SandboxError as exc:
            raise NodeError(exc.message) from None
        if result.stdout:
            self.emit("node_output", node_id=node["id"], text=result.stdout)
        self._store(node, result.result)
        return self.successors(node["id"])

    def node_http(self, node, data):
        url = self._render(data["url"])
        headers = {k: self._render(v) for k, v in (data.get("headers") or {}).items()}
        body = self._render(data["body"]) if data.get("body") else None
        try:
            resp = httpguard.request(method=data.get("method", "GET"), url=url, headers=headers, body=body)
        except httpguard.HttpBlocked as exc:
            raise NodeError(exc.message) from None
        value = {"status": resp.status, "body": resp.body, "headers": resp.headers, "url": resp.url}
        try:
            value["json"] = json.loads(resp.body)
        except ValueError:
            value["json"] = None
        self._store(node, value)
        return self.successors(node["id"])

    def node_human_input(self, node, data):
        pending = self.run.pending_input or {}
        if pending.get("node_id") == node["id"] and "answer" in pending:
            self.run.variables[data["variable"]] = pending["answer"]
            self.run.pending_input = {}
            return self.successors(node["id"])
        raise _Pause("waiting_input", {"node_id": node["id"], "prompt": self._render(data.get("prompt", "")),
                                       "variable": data["variable"]})

    def _retrieve(self, node_id: str, kb_ids: list[str], query: str, top_k: int) -> list[dict]:
        from knowledge.search import search
        from knowledge.selectors import pages_get
        from layra.errors import DomainError

        try:
            hits = search(user=self.user, knowledge_base_ids=kb_ids, query=query, top_k=top_k)
        except DomainError as exc:
            raise NodeError(f"Retrieval failed: {exc.message}") from None
        found = pages_get(user=self.user, image_ids=[hit["image_id"] for hit in hits])
        return [{**hit, "text": (found[hit["image_id"]][1].text or "") if hit["image_id"] in found else ""}
                for hit in hits]

    def node_retrieval(self, node, data):
        query = self._render(data.get("query", ""))
        self._store(node, self._retrieve(node["id"], data["knowledge_base_ids"], query, data.get("top_k", 5)))
        return self.successors(node["id"])

    def node_llm(self, node, data):
        from layra.errors import DomainError

        try:
            model = self.resolve_model(self.user, data.get("model_id"))
        except DomainError as exc:
            raise NodeError(f"Model: {exc.message}") from None
        prompt = self._render(data["prompt"])
        messages = []
        system = self._render(data.get("system_prompt", "")) or model.system_prompt
        if data.get("knowledge_base_ids"):
            pages = self._retrieve(node["id"], data["knowledge_base_ids"], prompt, data.get("top_k", 5))
            context = "\n\n".join(f"[page {p['page_number']}] {p['text']}" for p in pages if p["text"])
            system = (system + "\n\nContext:\n" + context).strip()
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": prompt})
        parts: list[str] = []
        size = 0
        try:
            for event in stream_chat(model=model, messages=messages):
                if event["type"] == "token":
                    parts.append(event["text"])
                    size += len(event["text"])
                    if size > settings.WORKFLOW_MAX_OUTPUT_BYTES:
                        raise NodeError("LLM output exceeds the run's output limit.")
                    self.emit("node_output", node_id=node["id"], text=event["text"])
        except LLMError as exc:
            raise NodeError(exc.message) from None
        self._store(node, "".join(parts))
        return self.successors(node["id"])


def run_claim(*, run_id: str) -> WorkflowRun | None:
    """Atomically take a run for execution: pending, or running with a stale heartbeat (a dead worker)."""
    stale = now() - timedelta(seconds=settings.WORKFLOW_STUCK_AFTER_S)
    claimed = WorkflowRun.objects(
        Q(run_id=run_id) & (Q(status="pending") | (Q(status="running") & Q(heartbeat_at__lt=stale)))
    ).update_one(set__status="running", set__heartbeat_at=now())
    if not claimed:
        return None
    return WorkflowRun.objects(run_id=run_id).first()


def run_execute(*, run_id: str, resolve_model: Callable | None = None) -> str | None:
    """Claim and execute a run until it finishes or pauses. Returns the final status (None: not claimed)."""
    from accounts.models import User

    run = run_claim(run_id=run_id)
    if run is None:
        return None
    user = User.objects.filter(username=run.username).first()
    engine = Engine(run, user, resolve_model=resolve_model)
    if user is None:
        engine._finish("failed", {"message": "The run's owner no longer exists."})
        return run.status
    try:
        return engine.execute()
    except Exception as exc:  # a bug or a store failure: fail the run clean rather than leaving it running
        engine._finish("failed", {"node_id": run.current_node, "message": f"Internal error: {type(exc).__name__}"})
        raise
