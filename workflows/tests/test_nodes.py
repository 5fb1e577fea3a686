"""The node registry: every type checks its own config, names its output, says whether it can be a custom node."""

import grimp
import pytest

from layra.errors import ValidationError
from tests.workflows_helpers import chain, node
from workflows.nodes import registry

# One valid config and one invalid config (with the message it must give) per registered type.
CONFIGS = {
    "start": ({}, ({"output_variable": "_hidden"}, "'output_variable' must be a variable name")),
    "end": ({"outputs": {"a": "x"}}, ("not an object", "'data' must be an object")),
    "llm": ({"prompt": "Hi {{ name }}", "knowledge_base_ids": ["kb1"]}, ({"prompt": ""}, "needs a 'prompt'")),
    "retrieval": ({"query": "{{ q }}", "knowledge_base_ids": ["kb1"], "top_k": 3},
                  ({"query": "q", "knowledge_base_ids": ["kb1"], "top_k": 99}, "'top_k' must be an integer")),
    "code": ({"code": "result = 1"}, ({"code": "def ("}, "code has a syntax error on line 1")),
    "condition": ({"expression": "x > 1"}, ({"expression": "x.__class__"}, "invalid expression in 'expression'")),
    "loop": ({"count": 3, "item_variable": "i"}, ({"count": 3, "items": "xs"}, "exactly one of 'items'")),
    "http": ({"url": "https://example.com/{{ id }}", "method": "post"},
             ({"url": "https://example.com", "method": "TRACE"}, "'method' must be one of")),
    "human_input": ({"variable": "answer", "prompt": "Name?"}, ({"prompt": "Name?"}, "'variable' must be a variable")),
    "variable": ({"assignments": {"y": "x + 1"}}, ({"assignments": {}}, "needs 'assignments'")),
    "custom": ({"name": "saved"}, ({"name": ""}, "needs the 'name' of a saved node")),
}


def test_every_registered_type_has_config_cases():
    assert set(CONFIGS) == registry.NODE_TYPES


@pytest.mark.parametrize("node_type", sorted(CONFIGS))
def test_each_type_accepts_its_config_and_names_the_node_when_rejecting(node_type):
    valid, (invalid, message) = CONFIGS[node_type]
    registry.validate_node_config("n1", node_type, valid)
    with pytest.raises(ValidationError, match=message) as caught:
        registry.validate_node_config("n1", node_type, invalid)
    assert caught.value.message.startswith("Node 'n1': ")
    assert caught.value.details == {"node_id": "n1"}


def test_an_unknown_type_is_a_validation_error_naming_the_node():
    with pytest.raises(ValidationError, match="Node 'n1': unknown node type 'shell'.") as caught:
        registry.validate_node_config("n1", "shell", {})
    assert caught.value.details == {"node_id": "n1"}


def test_an_unknown_node_type_in_a_saved_workflow_is_a_400_naming_the_node(api_client):
    nodes, edges = chain(node("start", "start"), node("x", "shell", cmd="rm -rf /"), node("end", "end"))
    resp = api_client.post("/api/v1/workflows/", {"workflow_name": "w", "nodes": nodes, "edges": edges},
                           format="json")
    assert resp.status_code == 400
    assert resp.json() == {"error": {"code": "validation_error", "message": "Node 'x': unknown node type 'shell'.",
                                     "details": {"node_id": "x"}}}


def test_output_names_and_custom_node_use_come_from_the_type():
    assert registry.output_name({"id": "a", "type": "llm", "data": {}}) == "a"
    assert registry.output_name({"id": "a", "type": "code", "data": {"output_variable": "out"}}) == "out"
    for flow_type in ("start", "end", "condition", "loop", "human_input", "variable"):
        assert registry.output_name({"id": "a", "type": flow_type, "data": {"output_variable": "x"}}) is None
    assert registry.NODE_TYPES - {"start", "end", "custom"} == registry.CUSTOMISABLE_TYPES


def test_a_custom_node_is_checked_against_the_saved_config():
    saved = {"double": {"type": "variable", "data": {"assignments": {"y": "x * 2"}}},
             "entry": {"type": "start", "data": {}}}
    registry.validate_node_config("c", "custom", {"name": "double"}, custom_nodes=saved)
    with pytest.raises(ValidationError, match="no saved custom node named 'nope'"):
        registry.validate_node_config("c", "custom", {"name": "nope"}, custom_nodes=saved)
    with pytest.raises(ValidationError, match="cannot wrap another custom, start or end node"):
        registry.validate_node_config("c", "custom", {"name": "entry"}, custom_nodes=saved)
    with pytest.raises(ValidationError, match="invalid expression in 'y'"):  # overrides are checked too
        registry.validate_node_config("c", "custom", {"name": "double", "assignments": {"y": "x.__dict__"}},
                                      custom_nodes=saved)


def test_a_start_node_cannot_be_saved_as_a_custom_node(api_client):
    resp = api_client.post("/api/v1/custom-nodes/", {"name": "s", "type": "start", "data": {}}, format="json")
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "Node type 'start' cannot be saved as a custom node."


def test_workflows_modules_import_each_other_without_cycles():
    """Counting function-level imports: a cycle inside the app is how services and tasks knotted before."""
    graph = grimp.build_graph("workflows")
    modules = {m for m in graph.modules if ".tests" not in m}
    deps = {m: {i for i in graph.find_modules_directly_imported_by(m) if i in modules} for m in modules}
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for nxt in sorted(deps[module]):
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join([*path, module, nxt])}"
            if nxt not in state:
                visit(nxt, [*path, module])
        state[module] = 2

    for module in sorted(modules):
        if module not in state:
            visit(module, [])
