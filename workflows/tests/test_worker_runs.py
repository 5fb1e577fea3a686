"""Runs end to end through a real Celery worker: events over SSE, pauses, cancel, escapes."""

import time

from tests.waiting import eventually
from tests.workflows_helpers import chain, node


def _create(client, nodes, edges):
    resp = client.post("/api/v1/workflows/", {"workflow_name": "w", "nodes": nodes, "edges": edges}, format="json")
    assert resp.status_code == 201, resp.json()
    return resp.json()["workflow_id"]


def _start(client, workflow_id, **body):
    resp = client.post(f"/api/v1/workflows/{workflow_id}/runs", body, format="json")
    assert resp.status_code == 202, resp.json()
    return resp.json()["run_id"]


def _wait(client, run_id, statuses, worker, timeout=60):
    return eventually(lambda: client.get(f"/api/v1/runs/{run_id}/").json(), until=lambda r: r["status"] in statuses,
                      timeout=timeout, context=lambda: worker.log()[-3000:])


def _wait_node(client, run_id, node_id, timeout=30):
    eventually(lambda: client.get(f"/api/v1/runs/{run_id}/").json()["current_node"] == node_id, timeout=timeout,
               interval=0.1)


def _sse(client, run_id, start=0):
    body = b"".join(client.get(f"/api/v1/runs/{run_id}/events?from={start}").streaming_content).decode()
    return [line.split(": ", 1)[1] for line in body.splitlines() if line.startswith("event: ")]


def test_run_through_worker_with_sse_events(celery_worker, api_client, other_client):
    nodes = [node("start", "start"), node("code", "code", code="result = [w.upper() for w in inputs['words']]"),
             node("cond", "condition", expression="len(code) > 1"),
             node("many", "variable", assignments={"msg": "'many: ' + code[0]"}),
             node("few", "variable", assignments={"msg": "'few'"}), node("end", "end", outputs={"msg": "msg"})]
    edges = [{"source": "start", "target": "code"}, {"source": "code", "target": "cond"},
             {"source": "cond", "target": "many", "label": "true"},
             {"source": "cond", "target": "few", "label": "false"},
             {"source": "many", "target": "end"}, {"source": "few", "target": "end"}]
    workflow_id = _create(api_client, nodes, edges)
    run_id = _start(api_client, workflow_id, inputs={"words": ["ab", "cd"]})
    run = _wait(api_client, run_id, {"succeeded", "failed"}, celery_worker)
    assert run["status"] == "succeeded", run["error"]
    assert run["outputs"] == {"msg": "many: AB"}
    names = _sse(api_client, run_id)
    assert names[0] == "run_queued" and names[-1] == "run_finished"
    assert names.count("node_started") == names.count("node_finished") == 5
    assert other_client.get(f"/api/v1/runs/{run_id}/").status_code == 404
    assert other_client.get(f"/api/v1/runs/{run_id}/events").status_code == 404
    assert other_client.post(f"/api/v1/runs/{run_id}/cancel").status_code == 404


def test_breakpoint_human_input_and_cancel_through_worker(celery_worker, api_client):
    nodes, edges = chain(node("start", "start"), node("ask", "human_input", prompt="Your name?", variable="name"),
                         node("greet", "variable", assignments={"greeting": "'hi ' + name"}),
                         node("end", "end", outputs={"greeting": "greeting"}))
    workflow_id = _create(api_client, nodes, edges)
    run_id = _start(api_client, workflow_id, breakpoints=["ask", "greet"])
    run = _wait(api_client, run_id, {"paused"}, celery_worker)
    assert run["current_node"] == "ask"
    assert _sse(api_client, run_id)[-1] == "run_paused"
    assert api_client.post(f"/api/v1/runs/{run_id}/input", {"action": "continue"}, format="json").status_code == 200
    run = _wait(api_client, run_id, {"waiting_input"}, celery_worker)
    assert run["pending_input"]["prompt"] == "Your name?"
    resp = api_client.post(f"/api/v1/runs/{run_id}/input", {"action": "answer", "value": "Ada"}, format="json")
    assert resp.status_code == 200
    run = _wait(api_client, run_id, {"paused"}, celery_worker)
    assert run["current_node"] == "greet" and run["variables"]["name"] == "Ada"
    api_client.post(f"/api/v1/runs/{run_id}/input", {"action": "continue"}, format="json")
    run = _wait(api_client, run_id, {"succeeded"}, celery_worker)
    assert run["outputs"] == {"greeting": "hi Ada"}

    run_id = _start(api_client, workflow_id)
    _wait(api_client, run_id, {"waiting_input"}, celery_worker)
    assert api_client.post(f"/api/v1/runs/{run_id}/cancel").json()["status"] == "cancelled"
    assert api_client.post(f"/api/v1/runs/{run_id}/cancel").status_code == 409
    assert api_client.post(f"/api/v1/runs/{run_id}/input", {"action": "answer", "value": 1},
                           format="json").status_code == 409


def test_escape_attempts_fail_the_node_and_the_worker_keeps_serving(celery_worker, api_client):
    attempts = {
        "while True:\n    pass": "longer than",
        "import os\nwhile True:\n    os.fork()": "process limit",
        "import socket\nsocket.socket().connect(('10.0.0.1', 80))": "Network is unreachable",
        "import socket\nsocket.create_connection(('127.0.0.1', 6379))": "Connection refused",
        "open('/proc/%d/cwd/layra/settings/core.py' % __import__('os').getppid())": "FileNotFoundError",
    }
    run_ids = {}
    for code in attempts:
        nodes, edges = chain(node("start", "start"), node("code", "code", code=code, timeout_s=2), node("end", "end"))
        run_ids[code] = _start(api_client, _create(api_client, nodes, edges))
    nodes, edges = chain(node("start", "start"), node("h", "http", url="http://169.254.169.254/latest/meta-data/"),
                         node("end", "end"))
    metadata_run = _start(api_client, _create(api_client, nodes, edges))
    for code, message in attempts.items():
        run = _wait(api_client, run_ids[code], {"succeeded", "failed"}, celery_worker)
        assert run["status"] == "failed" and run["error"]["node_id"] == "code"
        assert message in run["error"]["message"], run["error"]
    run = _wait(api_client, metadata_run, {"succeeded", "failed"}, celery_worker)
    assert run["status"] == "failed" and "not allowed" in run["error"]["message"]

    nodes, edges = chain(node("start", "start"), node("v", "variable", assignments={"ok": "True"}), node("end", "end"))
    run = _wait(api_client, _start(api_client, _create(api_client, nodes, edges)), {"succeeded", "failed"},
                celery_worker)
    assert run["status"] == "succeeded"


def test_run_survives_a_worker_crash(celery_worker, api_client, settings):
    from workflows.services import runs_check_stuck

    settings.WORKFLOW_STUCK_AFTER_S = 1
    nodes, edges = chain(node("start", "start"), node("before", "variable", assignments={"a": "1"}),
                         node("slow", "code", code="import time\ntime.sleep(3)\nresult = inputs['a'] + 1"),
                         node("end", "end", outputs={"b": "slow"}))
    run_id = _start(api_client, _create(api_client, nodes, edges))
    _wait_node(api_client, run_id, "slow")
    celery_worker.kill()
    time.sleep(1.5)
    celery_worker.start()
    assert runs_check_stuck() == {"resumed": 1, "failed": 0}
    run = _wait(api_client, run_id, {"succeeded", "failed"}, celery_worker)
    assert run["status"] == "succeeded", run["error"]
    assert run["outputs"] == {"b": 2} and run["completed_nodes"] == ["start", "before", "slow", "end"]


def test_cancel_a_running_run_stops_before_the_next_node(celery_worker, api_client):
    nodes, edges = chain(node("start", "start"), node("slow", "code", code="import time\ntime.sleep(2)\nresult = 1"),
                         node("after", "variable", assignments={"x": "1"}), node("end", "end"))
    run_id = _start(api_client, _create(api_client, nodes, edges))
    _wait_node(api_client, run_id, "slow")
    assert api_client.post(f"/api/v1/runs/{run_id}/cancel").status_code == 200
    run = _wait(api_client, run_id, {"cancelled", "succeeded", "failed"}, celery_worker)
    assert run["status"] == "cancelled" and "after" not in run["completed_nodes"]
    assert _sse(api_client, run_id)[-1] == "run_finished"


def test_llm_node_with_a_saved_model_config_runs_through_worker(celery_worker, api_client, llm_server):
    """The worker resolves the user's selected model config (key decrypted) and streams from the endpoint."""
    url = llm_server.url
    resp = api_client.post("/api/v1/models/", {"model_name": "tiny", "model_url": url, "api_key": "sk-secret-0000wxyz",
                                               "temperature": 0.2, "select": True}, format="json")
    assert resp.status_code == 201, resp.json()
    nodes, edges = chain(node("start", "start"), node("llm", "llm", prompt="Say {{ word }}"),
                         node("end", "end", outputs={"answer": "llm"}))
    workflow_id = _create(api_client, nodes, edges)
    run_id = _start(api_client, workflow_id, inputs={"word": "banana"})
    run = _wait(api_client, run_id, {"succeeded", "failed"}, celery_worker)
    assert run["status"] == "succeeded", run["error"]
    assert run["outputs"]["answer"].split() == ["Echo:", "Say", "banana"]
    sent = llm_server.requests[-1]
    assert sent["model"] == "tiny" and sent["temperature"] == 0.2
    assert "node_output" in _sse(api_client, run_id)
