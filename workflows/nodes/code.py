"""code: runs Python in the sandbox on `inputs` {name: expression} (else every public variable)."""

import json

from django.conf import settings

from .. import sandbox
from .base import NodeError, NodeType, fail


class CodeNode(NodeType):
    name = "code"

    def validate(self, node_id, data):
        code = data.get("code")
        if not isinstance(code, str) or not code.strip():
            fail(node_id, "a code node needs 'code'.")
        try:
            compile(code, "<node>", "exec")
        except SyntaxError as exc:
            fail(node_id, f"code has a syntax error on line {exc.lineno}: {exc.msg}.")

    def execute(self, ctx, node, data):
        try:
            limit = settings.WORKFLOW_CODE_TIMEOUT_S
            timeout = min(float(data.get("timeout_s") or limit), limit)
            result = sandbox.run_code(code=data["code"], inputs=self._inputs(ctx, data), timeout_s=timeout)
        except sandbox.SandboxError as exc:
            raise NodeError(exc.message) from None
        if result.stdout:
            ctx.emit("node_output", node_id=node["id"], text=result.stdout)
        ctx.store(node, result.result)
        return ctx.successors(node["id"])

    @staticmethod
    def _inputs(ctx, data) -> dict:
        if data.get("inputs"):
            return {name: ctx.evaluate(expr) for name, expr in data["inputs"].items()}
        public = {k: v for k, v in ctx.run.variables.items() if not k.startswith("_")}
        return json.loads(json.dumps(public, default=str))  # plain JSON values only cross into the sandbox
