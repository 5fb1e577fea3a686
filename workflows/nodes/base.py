"""What every node type shares: the errors execution raises, the run context it works on, the base class."""

from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from layra.errors import ValidationError

from .. import expressions


class NodeError(Exception):
    """A node failed; the run fails with this message, naming the node."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class Pause(Exception):
    """A node needs the outside world (an answer): the run saves its state and waits in `status`."""

    def __init__(self, status: str, info: dict):
        self.status, self.info = status, info


class RunContext(Protocol):
    """What a node sees of the engine executing it."""

    run: Any  # the WorkflowRun: variables, outputs, pending_input
    user: Any
    resolve_model: Callable

    def evaluate(self, expression: str) -> Any: ...
    def render(self, template: str) -> str: ...
    def emit(self, event: str, **data) -> None: ...
    def successors(self, node_id: str, label: str | None = None) -> list[str]: ...
    def store(self, node: dict, value: Any) -> None: ...


# -- config checks shared by the node types; every message names the node ----------------------------------------
def fail(node_id: str | None, message: str):
    details = {"node_id": node_id} if node_id else {}
    prefix = f"Node '{node_id}': " if node_id else ""
    raise ValidationError(prefix + message, details=details)


def check_template(node_id: str, data: dict, key: str) -> None:
    value = data.get(key, "")
    if not isinstance(value, str):
        fail(node_id, f"'{key}' must be a string template.")
    try:
        expressions.check_template(value)
    except expressions.ExpressionError as exc:
        fail(node_id, f"invalid template in '{key}': {exc.message}")


def check_expression(node_id: str, data: dict, key: str) -> None:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        fail(node_id, f"'{key}' must be a non-empty expression.")
    try:
        expressions.check(value)
    except expressions.ExpressionError as exc:
        fail(node_id, f"invalid expression in '{key}': {exc.message}")


def check_var_name(node_id: str, data: dict, key: str, required: bool = False) -> None:
    value = data.get(key)
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.isidentifier() or value.startswith("_"):
        fail(node_id, f"'{key}' must be a variable name (letters, digits, underscore).")


def check_id_list(node_id: str, data: dict, key: str, message: str, *, required: bool) -> None:
    ids = data.get(key) if required else data.get(key, [])
    if (required and not ids) or not isinstance(ids, list) or not all(isinstance(k, str) for k in ids):
        fail(node_id, message)


class NodeType:
    """One node type: its config check, its execution, where its value goes, whether it can be a custom node."""

    name: ClassVar[str]
    stores_output: ClassVar[bool] = True  # False: the node writes no value of its own (flow control, assignments)
    customisable: ClassVar[bool] = True  # can be saved under a name and reused as a "custom" node
    # A branching type's outgoing edges carry these labels (None: edges are unlabelled, any label is ignored).
    edge_labels: ClassVar[frozenset[str] | None] = None
    required_edge_labels: ClassVar[frozenset[str]] = frozenset()  # at least one edge with each of these
    edge_labels_message: ClassVar[str] = ""

    def check(self, node_id: str, data: dict, *, custom_nodes: dict | None = None) -> None:
        """The checks every type shares, then the type's own."""
        if not isinstance(data, dict):
            fail(node_id, "'data' must be an object.")
        check_var_name(node_id, data, "output_variable")
        self.validate(node_id, data)

    def validate(self, node_id: str, data: dict) -> None:
        """Raise ValidationError (via `fail`) for a config this type cannot run."""

    def execute(self, ctx: RunContext, node: dict, data: dict) -> list[str]:
        """Do the node's work on the run; return the ids of the nodes to run next."""
        raise NotImplementedError

    def output_name(self, node: dict) -> str | None:
        """The run variable the node's value is stored under (None: it stores none)."""
        if not self.stores_output:
            return None
        return node.get("data", {}).get("output_variable") or node["id"]
