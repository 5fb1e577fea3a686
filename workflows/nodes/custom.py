"""custom: a saved node config reused by `name`; runs are started with it expanded to the saved type."""

from .base import NodeError, NodeType, fail


class CustomNode(NodeType):
    name = "custom"
    customisable = False

    def __init__(self, resolve_type):
        self._resolve_type = resolve_type  # the registry's lookup, to check the saved type's config

    def validate(self, node_id, data):
        if not isinstance(data.get("name"), str) or not data["name"]:
            fail(node_id, "a custom node needs the 'name' of a saved node.")

    def check(self, node_id, data, *, custom_nodes=None):
        super().check(node_id, data, custom_nodes=custom_nodes)
        if custom_nodes is None:  # saved nodes unknown here: only the reference itself is checked
            return
        saved = custom_nodes.get(data["name"])
        if saved is None:
            fail(node_id, f"no saved custom node named '{data['name']}'.")
        inner = self._resolve_type(saved.get("type"))
        if inner is None or not inner.customisable:
            fail(node_id, "a custom node cannot wrap another custom, start or end node.")
        inner.check(node_id, {**saved.get("data", {}), **{k: v for k, v in data.items() if k != "name"}})

    def execute(self, ctx, node, data):
        # run_create expands custom nodes into their saved type, so an executing run never holds one.
        raise NodeError(f"Unknown node type '{self.name}'.")
