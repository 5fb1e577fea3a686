"""Graph builders for workflows tests."""


def node(node_id: str, node_type: str, **data) -> dict:
    return {"id": node_id, "type": node_type, "data": data}


def chain(*nodes: dict) -> tuple[list, list]:
    """Nodes linked start → ... → end in order."""
    edges = [{"source": a["id"], "target": b["id"]} for a, b in zip(nodes, nodes[1:], strict=False)]
    return list(nodes), edges
