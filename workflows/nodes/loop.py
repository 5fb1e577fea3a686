"""loop: runs its "body" edges once per item (`items` expression or `count`), then its "done" edges."""

from django.conf import settings

from .base import NodeError, NodeType, check_expression, check_var_name, fail


class LoopNode(NodeType):
    name = "loop"
    stores_output = False
    edge_labels = frozenset({"body", "done"})
    required_edge_labels = frozenset({"body"})
    edge_labels_message = "loop edges must be labelled 'body' (at least one) or 'done'."

    def validate(self, node_id, data):
        if ("items" in data) == ("count" in data):
            fail(node_id, "a loop node needs exactly one of 'items' (an expression) or 'count'.")
        if "items" in data:
            check_expression(node_id, data, "items")
        elif not isinstance(data["count"], int) or data["count"] < 0:
            fail(node_id, "'count' must be a non-negative integer.")
        max_it = data.get("max_iterations", 100)
        if not isinstance(max_it, int) or max_it < 1:
            fail(node_id, "'max_iterations' must be a positive integer.")
        check_var_name(node_id, data, "item_variable")

    def execute(self, ctx, node, data):
        # The loop's progress lives in the run's variables, so a resumed run continues where it stopped.
        loops = ctx.run.variables.setdefault("_loops", {})
        state = loops.get(node["id"]) or {"items": self._items(ctx, data), "index": 0}
        if state["index"] >= len(state["items"]):
            loops.pop(node["id"], None)
            return ctx.successors(node["id"], "done")
        ctx.run.variables[data.get("item_variable", "item")] = state["items"][state["index"]]
        ctx.run.variables[data.get("index_variable", "index")] = state["index"]
        state["index"] += 1
        loops[node["id"]] = state
        return ctx.successors(node["id"], "body")

    @staticmethod
    def _items(ctx, data) -> list:
        max_it = min(int(data.get("max_iterations", 100)), settings.WORKFLOW_LOOP_MAX_ITERATIONS)
        if "items" in data:
            items = ctx.evaluate(data["items"])
            if not isinstance(items, list | tuple | str | dict):
                raise NodeError("Loop 'items' must evaluate to a list.")
            items = list(items)
        else:
            items = list(range(int(data["count"])))
        if len(items) > max_it:
            raise NodeError(f"Loop has {len(items)} items, more than max_iterations ({max_it}).")
        return items
