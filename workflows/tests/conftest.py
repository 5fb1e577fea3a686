import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chat.llm import ResolvedModel
from tests.fake_llm import FakeLLM
from tests.workflows_helpers import chain, node


class _SiteHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/redirect"):
            target = self.path.split("to=", 1)[1]
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()
            return
        if self.path == "/big":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * 50_000)
            return
        payload = json.dumps({"path": self.path, "host": self.headers.get("Host"),
                              "token": self.headers.get("X-Token")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET


def _serve(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


def _echo(body: dict) -> str:
    return " ".join(["Echo:", *str(body["messages"][-1]["content"]).split()])


@pytest.fixture
def llm_server():
    """The shared fake LLM, answering each prompt with an echo of it."""
    with FakeLLM(reply=_echo) as server:
        yield server


@pytest.fixture
def model(llm_server):
    return ResolvedModel(model_name="tiny", model_url=llm_server.url, api_key="k")


@pytest.fixture
def site():
    server = _serve(_SiteHandler)
    yield server
    server.shutdown()


@pytest.fixture
def code_node(user):
    """Run start -> code -> end through the engine as `user`; returns the finished WorkflowRun."""
    from workflows import engine, services
    from workflows.documents import WorkflowRun

    def _run(code: str, **inputs) -> WorkflowRun:
        nodes, edges = chain(node("start", "start"), node("code", "code", code=code), node("end", "end"))
        wf = services.workflow_create(user=user, workflow_name="sandbox", nodes=nodes, edges=edges,
                                      global_variables={})
        run = services.run_create(user=user, wf=wf, inputs=inputs, breakpoints=[])
        engine.run_execute(run_id=run.run_id)
        return WorkflowRun.objects.get(run_id=run.run_id)

    return _run
