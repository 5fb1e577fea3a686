"""condition: follows the edge labelled "true" or "false" by the value of its `expression`."""

from .base import NodeType, check_expression


class ConditionNode(NodeType):
    name = "condition"
    stores_output = False
    edge_labels = frozenset({"true", "false"})
    edge_labels_message = "condition edges must be labelled 'true' or 'false'."

    def validate(self, node_id, data):
        check_expression(node_id, data, "expression")

    def execute(self, ctx, node, data):
        result = bool(ctx.evaluate(data["expression"]))
        ctx.run.variables.setdefault("_branches", {})[node["id"]] = result
        return ctx.successors(node["id"], "true" if result else "false")
