"""The node types a workflow may use, by name; everything about a type is asked of its class here."""

from .base import NodeType, fail
from .code import CodeNode
from .condition import ConditionNode
from .custom import CustomNode
from .end import EndNode
from .http import HttpNode
from .human_input import HumanInputNode
from .llm import LlmNode
from .loop import LoopNode
from .retrieval import RetrievalNode
from .start import StartNode
from .variable import VariableNode


def node_type_get(name) -> NodeType | None:
    return _REGISTRY.get(name) if isinstance(name, str) else None


_REGISTRY: dict[str, NodeType] = {
    node_type.name: node_type
    for node_type in (StartNode(), EndNode(), LlmNode(), RetrievalNode(), CodeNode(), ConditionNode(), LoopNode(),
                      HttpNode(), HumanInputNode(), VariableNode(), CustomNode(node_type_get))
}
NODE_TYPES = frozenset(_REGISTRY)
CUSTOMISABLE_TYPES = frozenset(name for name, node_type in _REGISTRY.items() if node_type.customisable)


def validate_node_config(node_id: str, node_type: str, data: dict, *, custom_nodes: dict | None = None) -> None:
    """Check one node's config; `custom_nodes` (the user's saved nodes) lets a custom node's target be checked."""
    found = node_type_get(node_type)
    if found is None:
        fail(node_id, f"unknown node type '{node_type}'.")
    found.check(node_id, data, custom_nodes=custom_nodes)


def output_name(node: dict) -> str | None:
    """The run variable a node's value is stored under; None for a type that stores none (or an unknown one)."""
    found = node_type_get(node.get("type"))
    return found.output_name(node) if found else None
