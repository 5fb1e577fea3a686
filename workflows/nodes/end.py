"""end: sets the run's outputs, from its `outputs` {name: expression} or else every public variable."""

from .base import NodeType


class EndNode(NodeType):
    name = "end"
    stores_output = False
    customisable = False

    def execute(self, ctx, node, data):
        for name, expression in (data.get("outputs") or {}).items():
            ctx.run.outputs[name] = ctx.evaluate(expression)
        if not data.get("outputs"):
            ctx.run.outputs.update({k: v for k, v in ctx.run.variables.items() if not k.startswith("_")})
        return []
