"""variable: assigns run variables from expressions, `assignments` {name: expression}."""

from .base import NodeType, check_expression, check_var_name, fail


class VariableNode(NodeType):
    name = "variable"
    stores_output = False

    def validate(self, node_id, data):
        assignments = data.get("assignments")
        if not isinstance(assignments, dict) or not assignments:
            fail(node_id, "a variable node needs 'assignments' {name: expression}.")
        for name in assignments:
            check_var_name(node_id, {"name": name}, "name", required=True)
            check_expression(node_id, assignments, name)

    def execute(self, ctx, node, data):
        for name, expression in data["assignments"].items():
            ctx.run.variables[name] = ctx.evaluate(expression)
        return ctx.successors(node["id"])
