"""Workflow CRUD, validation, optimistic locking, import/export, custom nodes, chatflows, ownership."""

import pytest

from tests.workflows_helpers import chain, node


def _body(name="wf"):
    nodes, edges = chain(node("start", "start"),
                         node("v", "variable", assignments={"reply": "'you said ' + user_message"}),
                         node("end", "end", outputs={"reply": "reply"}))
    return {"workflow_name": name, "nodes": nodes, "edges": edges, "global_variables": {"user_message": ""}}


def test_crud_optimistic_locking_duplicate_export_import(api_client, other_client):
    created = api_client.post("/api/v1/workflows/", _body(), format="json")
    assert created.status_code == 201, created.json()
    wf = created.json()
    assert wf["version"] == 1 and wf["start_node"] == "start"
    url = f"/api/v1/workflows/{wf['workflow_id']}/"

    saved = api_client.put(url, {"version": 1, "workflow_name": "renamed"}, format="json")
    assert saved.status_code == 200 and saved.json()["version"] == 2
    stale = api_client.put(url, {"version": 1, "workflow_name": "lost update"}, format="json")
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "conflict"
    assert api_client.get(url).json()["workflow_name"] == "renamed"

    dup = api_client.post(url + "duplicate/", {}, format="json").json()
    assert dup["workflow_id"] != wf["workflow_id"] and dup["workflow_name"] == "renamed (copy)"
    exported = api_client.get(url + "export/").json()
    imported = api_client.post("/api/v1/workflows/import/", exported, format="json")
    assert imported.status_code == 201 and imported.json()["nodes"] == wf["nodes"]
    assert api_client.get("/api/v1/workflows/").json()["count"] == 3

    assert other_client.get(url).status_code == 404
    assert other_client.put(url, {"version": 2, "workflow_name": "x"}, format="json").status_code == 404
    assert other_client.post(f"/api/v1/workflows/{wf['workflow_id']}/runs", {}, format="json").status_code == 404
    assert api_client.delete(url).status_code == 204
    assert api_client.get(url).status_code == 404


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda b: b["nodes"].append(node("start2", "start")), "exactly one start"),
    (lambda b: b["edges"].append({"source": "v", "target": "ghost"}), "missing node"),
    (lambda b: b["nodes"].append(node("island", "end")), "Node 'island': is not reachable"),
    (lambda b: b["edges"].append({"source": "end", "target": "v"}), "cycle"),
    (lambda b: b["nodes"].__setitem__(1, node("v", "shell", cmd="rm -rf /")), "Node 'v': unknown node type"),
    (lambda b: b["nodes"].__setitem__(1, node("v", "code", code="def (")), "Node 'v': code has a syntax error"),
    (lambda b: b["nodes"].__setitem__(1, node("v", "http", url="x", method="TRACE")), "Node 'v': 'method'"),
    (lambda b: b["nodes"].__setitem__(1, node("v", "variable", assignments={"a": "x.__class__"})), "Node 'v'"),
    (lambda b: b["nodes"].__setitem__(1, node("v", "custom", name="nope")), "no saved custom node"),
])
def test_invalid_graphs_name_the_node(api_client, mutate, message):
    body = _body()
    mutate(body)
    resp = api_client.post("/api/v1/workflows/", body, format="json")
    assert resp.status_code == 400
    assert message in resp.json()["error"]["message"], resp.json()


def test_custom_nodes_api(api_client, other_client):
    resp = api_client.post("/api/v1/custom-nodes/", {"name": "greet", "type": "variable",
                                                      "data": {"assignments": {"g": "'hi'"}}}, format="json")
    assert resp.status_code == 201
    assert api_client.post("/api/v1/custom-nodes/", {"name": "bad", "type": "variable", "data": {}},
                           format="json").status_code == 400
    assert [n["name"] for n in api_client.get("/api/v1/custom-nodes/").json()["results"]] == ["greet"]
    assert other_client.get("/api/v1/custom-nodes/").json()["results"] == []
    assert other_client.delete("/api/v1/custom-nodes/greet/").status_code == 404
    assert api_client.delete("/api/v1/custom-nodes/greet/").status_code == 204


def test_chatflow_runs_the_workflow_per_message(api_client, other_client):
    wf = api_client.post("/api/v1/workflows/", _body(), format="json").json()
    cf = api_client.post("/api/v1/chatflows/", {"workflow_id": wf["workflow_id"]}, format="json").json()
    url = f"/api/v1/chatflows/{cf['chatflow_id']}/"
    first = api_client.post(url + "messages/", {"message": "hello"}, format="json")
    assert first.status_code == 201 and first.json()["reply"] == "you said hello"
    api_client.post(url + "messages/", {"message": "again"}, format="json")
    turns = api_client.get(url).json()["turns"]
    assert [t["reply"] for t in turns] == ["you said hello", "you said again"]
    assert other_client.get(url).status_code == 404
    assert other_client.post(url + "messages/", {"message": "x"}, format="json").status_code == 404
    listed = api_client.get(f"/api/v1/chatflows/?workflow_id={wf['workflow_id']}").json()["results"]
    assert [c["chatflow_id"] for c in listed] == [cf["chatflow_id"]]
