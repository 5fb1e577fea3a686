"""start: where a run begins; it has no config and passes straight on."""

from .base import NodeType


class StartNode(NodeType):
    name = "start"
    stores_output = False
    customisable = False

    def execute(self, ctx, node, data):
        return ctx.successors(node["id"])
