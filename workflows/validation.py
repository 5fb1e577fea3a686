"""Graph validation on save: the graph's structure here, each node's config by its type (nodes.registry).

Every message names the node it is about.
"""

from .nodes.base import fail
from .nodes.registry import NODE_TYPES, node_type_get, validate_node_config

__all__ = ["MAX_NODES", "NODE_TYPES", "validate_graph", "validate_node_config"]

MAX_NODES = 500


def validate_graph(*, nodes: list, edges: list, start_node: str = "", custom_nodes: dict | None = None) -> str:
    """Validate a workflow graph; return the start node id."""
    by_id = _nodes_by_id(nodes, custom_nodes or {})
    start = _start_node(nodes, start_node)
    out = _outgoing(by_id, edges)
    _check_edge_labels(by_id, edges)
    _check_reachable(by_id, out, start)
    _check_cycles_pass_through_loops(by_id, out)
    return start


def _nodes_by_id(nodes: list, custom_nodes: dict) -> dict[str, dict]:
    if not isinstance(nodes, list) or not nodes:
        fail(None, "A workflow needs at least one node.")
    if len(nodes) > MAX_NODES:
        fail(None, f"A workflow has at most {MAX_NODES} nodes.")
    by_id: dict[str, dict] = {}
    for node in nodes:
        if not isinstance(node, dict) or not isinstance(node.get("id"), str) or not node["id"]:
            fail(None, "Every node needs a string 'id'.")
        if node["id"] in by_id:
            fail(node["id"], "duplicate node id.")
        validate_node_config(node["id"], node.get("type"), node.get("data", {}), custom_nodes=custom_nodes)
        by_id[node["id"]] = node
    return by_id


def _start_node(nodes: list, start_node: str) -> str:
    starts = [n["id"] for n in nodes if n["type"] == "start"]
    if len(starts) != 1:
        fail(None, f"A workflow needs exactly one start node (found {len(starts)}).")
    if start_node and start_node != starts[0]:
        fail(start_node, "'start_node' must be the id of the start node.")
    return starts[0]


def _outgoing(by_id: dict[str, dict], edges: list) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {n: [] for n in by_id}
    for edge in edges:
        if not isinstance(edge, dict):
            fail(None, "Every edge must be an object.")
        src, dst = edge.get("source"), edge.get("target")
        if src not in by_id:
            fail(src if isinstance(src, str) else None, "edge source is not a node of this workflow.")
        if dst not in by_id:
            fail(dst if isinstance(dst, str) else None, f"edge from '{src}' points to a missing node.")
        if by_id[dst]["type"] == "start":
            fail(dst, "the start node cannot have incoming edges.")
        out[src].append(dst)
    return out


def _check_edge_labels(by_id: dict[str, dict], edges: list) -> None:
    for node_id, node in by_id.items():
        node_type = node_type_get(node["type"])
        if node_type.edge_labels is None:
            continue
        labels = {e.get("label") for e in edges if e.get("source") == node_id}
        if not node_type.required_edge_labels <= labels or not labels <= node_type.edge_labels:
            fail(node_id, node_type.edge_labels_message)


def _check_reachable(by_id: dict[str, dict], out: dict[str, list[str]], start: str) -> None:
    seen, stack = {start}, [start]
    while stack:
        for nxt in out[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    for node_id in by_id:
        if node_id not in seen:
            fail(node_id, "is not reachable from the start node.")


def _check_cycles_pass_through_loops(by_id: dict[str, dict], out: dict[str, list[str]]) -> None:
    """Cycles are allowed only through a loop node: ignore edges into loop nodes and look for a cycle."""
    loops = {n for n, node in by_id.items() if node["type"] == "loop"}
    color: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node_id: str) -> None:
        color[node_id] = 1
        for nxt in out[node_id]:
            if nxt in loops:
                continue
            if color.get(nxt) == 1:
                fail(nxt, "is part of a cycle that does not pass through a loop node.")
            if color.get(nxt) is None:
                visit(nxt)
        color[node_id] = 2

    for node_id in by_id:
        if color.get(node_id) is None:
            visit(node_id)
