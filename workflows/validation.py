"""Graph and per-node validation on save; every message names the node."""

from layra.errors import ValidationError

from . import expressions

NODE_TYPES = {"start", "end", "llm", "retrieval", "code", "condition", "loop", "http", "human_input",
              "variable", "custom"}
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}
MAX_NODES = 500


def _fail(node_id: str | None, message: str):
    details = {"node_id": node_id} if node_id else {}
    prefix = f"Node '{node_id}': " if node_id else ""
    raise ValidationError(prefix + message, details=details)


def _template(node_id, data, key):
    value = data.get(key, "")
    if not isinstance(value, str):
        _fail(node_id, f"'{key}' must be a string template.")
    try:
        expressions.check_template(value)
    except expressions.ExpressionError as exc:
        _fail(node_id, f"invalid template in '{key}': {exc.message}")


def _expr(node_id, data, key, required=True):
    value = data.get(key)
    if value in (None, "") and not required:
        return
    if not isinstance(value, str) or not value.strip():
        _fail(node_id, f"'{key}' must be a non-empty expression.")
    try:
        expressions.check(value)
    except expressions.ExpressionError as exc:
        _fail(node_id, f"invalid expression in '{key}': {exc.message}")


def _var_name(node_id, data, key, required=False):
    value = data.get(key)
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.isidentifier() or value.startswith("_"):
        _fail(node_id, f"'{key}' must be a variable name (letters, digits, underscore).")


def validate_node_config(node_id: str, node_type: str, data: dict) -> None:
    if not isinstance(data, dict):
        _fail(node_id, "'data' must be an object.")
    _var_name(node_id, data, "output_variable")
    if node_type == "llm":
        _template(node_id, data, "prompt")
        if not data.get("prompt"):
            _fail(node_id, "an LLM node needs a 'prompt'.")
        if "system_prompt" in data:
            _template(node_id, data, "system_prompt")
        kbs = data.get("knowledge_base_ids", [])
        if not isinstance(kbs, list) or not all(isinstance(k, str) for k in kbs):
            _fail(node_id, "'knowledge_base_ids' must be a list of ids.")
    elif node_type == "retrieval":
        _template(node_id, data, "query")
        kbs = data.get("knowledge_base_ids")
        if not kbs or not isinstance(kbs, list) or not all(isinstance(k, str) for k in kbs):
            _fail(node_id, "a retrieval node needs 'knowledge_base_ids' (a non-empty list).")
        top_k = data.get("top_k", 5)
        if not isinstance(top_k, int) or not 1 <= top_k <= 50:
            _fail(node_id, "'top_k' must be an integer between 1 and 50.")
    elif node_type == "code":
        code = data.get("code")
        if not isinstance(code, str) or not code.strip():
            _fail(node_id, "a code node needs 'code'.")
        try:
            compile(code, "<node>", "exec")
        except SyntaxError as exc:
            _fail(node_id, f"code has a syntax error on line {exc.lineno}: {exc.msg}.")
    elif node_type == "condition":
        _expr(node_id, data, "expression")
    elif node_type == "loop":
        if ("items" in data) == ("count" in data):
            _fail(node_id, "a loop node needs exactly one of 'items' (an expression) or 'count'.")
        if "items" in data:
            _expr(node_id, data, "items")
        elif not isinstance(data["count"], int) or data["count"] < 0:
            _fail(node_id, "'count' must be a non-negative integer.")
        max_it = data.get("max_iterations", 100)
        if not isinstance(max_it, int) or max_it < 1:
            _fail(node_id, "'max_iterations' must be a positive integer.")
        _var_name(node_id, data, "item_variable")
    elif node_type == "http":
        if str(data.get("method", "GET")).upper() not in HTTP_METHODS:
            _fail(node_id, f"'method' must be one of {sorted(HTTP_METHODS)}.")
        _template(node_id, data, "url")
        if not data.get("url"):
            _fail(node_id, "an HTTP node needs a 'url'.")
        headers = data.get("headers", {})
        if not isinstance(headers, dict):
            _fail(node_id, "'headers' must be an object.")
        for key in headers:
            _template(node_id, headers, key)
        if "body" in data:
            _template(node_id, data, "body")
    elif node_type == "human_input":
        _var_name(node_id, data, "variable", required=True)
    elif node_type == "variable":
        assignments = data.get("assignments")
        if not isinstance(assignments, dict) or not assignments:
            _fail(node_id, "a variable node needs 'assignments' {name: expression}.")
        for name in assignments:
            _var_name(node_id, {"name": name}, "name", required=True)
            _expr(node_id, assignments, name)
    elif node_type == "custom" and (not isinstance(data.get("name"), str) or not data["name"]):
        _fail(node_id, "a custom node needs the 'name' of a saved node.")


def validate_graph(*, nodes: list, edges: list, start_node: str = "", custom_nodes: dict | None = None) -> str:
    """Validate a workflow graph; return the start node id."""
    if not isinstance(nodes, list) or not nodes:
        _fail(None, "A workflow needs at least one node.")
    if len(nodes) > MAX_NODES:
        _fail(None, f"A workflow has at most {MAX_NODES} nodes.")
    by_id: dict[str, dict] = {}
    for node in nodes:
        if not isinstance(node, dict) or not isinstance(node.get("id"), str) or not node["id"]:
            _fail(None, "Every node needs a string 'id'.")
        node_id = node["id"]
        if node_id in by_id:
            _fail(node_id, "duplicate node id.")
        node_type = node.get("type")
        if node_type not in NODE_TYPES:
            _fail(node_id, f"unknown node type '{node_type}'.")
        data = node.get("data", {})
        validate_node_config(node_id, node_type, data)
        if node_type == "custom":
            saved = (custom_nodes or {}).get(data["name"])
            if saved is None:
                _fail(node_id, f"no saved custom node named '{data['name']}'.")
            if saved.get("type") in ("custom", "start", "end"):
                _fail(node_id, "a custom node cannot wrap another custom, start or end node.")
            validate_node_config(node_id, saved["type"], {**saved.get("data", {}),
                                                          **{k: v for k, v in data.items() if k != "name"}})
        by_id[node_id] = node
    starts = [n["id"] for n in nodes if n["type"] == "start"]
    if len(starts) != 1:
        _fail(None, f"A workflow needs exactly one start node (found {len(starts)}).")
    start = starts[0]
    if start_node and start_node != start:
        _fail(start_node, "'start_node' must be the id of the start node.")
    out: dict[str, list[str]] = {n: [] for n in by_id}
    for edge in edges:
        if not isinstance(edge, dict):
            _fail(None, "Every edge must be an object.")
        src, dst = edge.get("source"), edge.get("target")
        if src not in by_id:
            _fail(src if isinstance(src, str) else None, "edge source is not a node of this workflow.")
        if dst not in by_id:
            _fail(dst if isinstance(dst, str) else None, f"edge from '{src}' points to a missing node.")
        if by_id[dst]["type"] == "start":
            _fail(dst, "the start node cannot have incoming edges.")
        out[src].append(dst)
    for node_id, node in by_id.items():
        if node["type"] == "condition":
            labels = {e.get("label") for e in edges if e.get("source") == node_id}
            if not labels <= {"true", "false"}:
                _fail(node_id, "condition edges must be labelled 'true' or 'false'.")
        if node["type"] == "loop":
            labels = {e.get("label") for e in edges if e.get("source") == node_id}
            if "body" not in labels or not labels <= {"body", "done"}:
                _fail(node_id, "loop edges must be labelled 'body' (at least one) or 'done'.")
    # Reachability from the start.
    seen, stack = {start}, [start]
    while stack:
        for nxt in out[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    for node_id in by_id:
        if node_id not in seen:
            _fail(node_id, "is not reachable from the start node.")
    # Cycles are allowed only through a loop node: remove loop nodes' incoming back edges and look for a cycle.
    loops = {n for n, node in by_id.items() if node["type"] == "loop"}
    color: dict[str, int] = {}

    def _dfs(node_id: str):
        color[node_id] = 1
        for nxt in out[node_id]:
            if nxt in loops:
                continue
            if color.get(nxt) == 1:
                _fail(nxt, "is part of a cycle that does not pass through a loop node.")
            if color.get(nxt) is None:
                _dfs(nxt)
        color[node_id] = 2

    for node_id in by_id:
        if color.get(node_id) is None:
            _dfs(node_id)
    return start
