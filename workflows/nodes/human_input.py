"""human_input: pauses the run for an answer, then stores it in `variable`."""

from ..documents import RunStatus
from .base import NodeType, Pause, check_var_name


class HumanInputNode(NodeType):
    name = "human_input"
    stores_output = False

    def validate(self, node_id, data):
        check_var_name(node_id, data, "variable", required=True)

    def execute(self, ctx, node, data):
        pending = ctx.run.pending_input or {}
        if pending.get("node_id") == node["id"] and "answer" in pending:
            ctx.run.variables[data["variable"]] = pending["answer"]
            ctx.run.pending_input = {}
            return ctx.successors(node["id"])
        raise Pause(RunStatus.WAITING_INPUT, {"node_id": node["id"], "prompt": ctx.render(data.get("prompt", "")),
                                              "variable": data["variable"]})
