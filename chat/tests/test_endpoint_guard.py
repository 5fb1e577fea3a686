"""Model endpoints go through the outbound guard (layra.netguard): saving, `models/{id}/test` and every chat turn.

The test run allowlists exactly two loopback URLs (tests/plugin.py): the fake LLM's and a closed one. Everything
else on loopback, private, link-local or metadata addresses is refused, and nothing reaches it."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chat import llm
from chat.documents import Conversation
from chat.tests.helpers import ask, ask_json, make_conversation, make_model, sse_events

pytestmark = pytest.mark.django_db

REFUSED_URLS = [
    ("http://127.0.0.1:11434/v1", "loopback"),
    ("http://[::1]:8000/v1", "loopback"),
    ("http://[::ffff:127.0.0.1]:8000/v1", "loopback"),
    ("http://10.0.0.5/v1", "private"),
    ("http://192.168.1.20:11434/v1", "private"),
    ("http://169.254.169.254/latest/meta-data", "metadata"),
    ("http://[fd00:ec2::254]/v1", "metadata"),
    ("http://169.254.10.10/v1", "link-local"),
    ("http://0.0.0.0:8000/v1", "unspecified"),
    ("http://100.64.0.1/v1", "non-public"),
]


def _body(url: str) -> dict:
    return {"model_name": "m", "model_url": url, "api_key": "sk-test-000000000000abcd"}


def _assert_refused(response, fragment: str) -> dict:
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == "model_endpoint_refused"
    assert f"resolves to a {fragment} address" in body["error"]["message"]
    return body


class _Recorder(ThreadingHTTPServer):
    """Any HTTP server on loopback (an internal service): records what reaches it."""

    def __init__(self):
        self.hits: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                recorder.hits.append(self.path)
                payload = b'{"internal": "secret-internal-page"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

        super().__init__(("127.0.0.1", 0), Handler)
        self.daemon_threads = True
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def internal_service():
    server = _Recorder()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("url", "kind"), REFUSED_URLS)
def test_saving_a_loopback_private_or_metadata_url_is_refused(api_client, url, kind):
    _assert_refused(api_client.post("/api/v1/models/", _body(url), format="json"), kind)
    assert api_client.get("/api/v1/models/").json()["results"] == []


def test_changing_a_saved_model_to_a_private_url_is_refused(api_client, fake_llm):
    model = make_model(api_client, fake_llm.url)
    response = api_client.patch(f"/api/v1/models/{model['model_id']}/", {"model_url": "http://10.1.2.3/v1"},
                                format="json")
    body = _assert_refused(response, "private")
    assert body["error"]["details"]["model_url"]
    assert api_client.get(f"/api/v1/models/{model['model_id']}/").json()["model_url"] == fake_llm.url


def test_a_host_name_resolving_to_loopback_is_refused(api_client, fake_llm):
    # The fake's own port, named "localhost" (/etc/hosts): not the allowlisted URL, and loopback.
    response = api_client.post("/api/v1/models/", _body(f"http://localhost:{fake_llm.port}/v1"), format="json")
    _assert_refused(response, "loopback")
    assert fake_llm.requests == []


def test_the_allowlist_allows_exactly_the_url_it_lists(api_client, fake_llm, internal_service, settings):
    assert settings.MODEL_ENDPOINT_ALLOWLIST  # the test run's: the fake's URL and the closed one, nothing else
    model = make_model(api_client, fake_llm.url)
    assert api_client.post(f"/api/v1/models/{model['model_id']}/test").json()["ok"] is True
    port = fake_llm.port
    for url in (f"http://localhost:{port}/v1",  # another name for the same address
                f"http://127.0.0.2:{port}/v1",  # another address
                f"https://127.0.0.1:{port}/v1",  # another scheme
                f"http://127.0.0.1:{port}/v2",  # another path
                f"http://127.0.0.1:{port}/v10",  # not below /v1 (whole segments)
                f"{internal_service.url}/v1"):  # another port
        _assert_refused(api_client.post("/api/v1/models/", _body(url), format="json"), "loopback")
    assert internal_service.hits == []
    assert api_client.post("/api/v1/models/", _body(f"{fake_llm.url}/deployments/x"), format="json").status_code \
        == 201  # below the listed path


def test_an_allowlisted_network_allows_its_addresses_but_never_metadata(api_client, fake_llm, settings):
    settings.MODEL_ENDPOINT_ALLOWLIST = ["127.0.0.0/8", "169.254.0.0/16"]
    model = make_model(api_client, f"http://localhost:{fake_llm.port}/v1")
    assert api_client.post(f"/api/v1/models/{model['model_id']}/test").json()["ok"] is True
    assert fake_llm.count == 1
    assert api_client.post("/api/v1/models/", _body("http://169.254.1.1/v1"), format="json").status_code == 201
    _assert_refused(api_client.post("/api/v1/models/", _body("http://169.254.169.254/v1"), format="json"),
                    "metadata")
    _assert_refused(api_client.post("/api/v1/models/", _body("http://10.0.0.1/v1"), format="json"), "private")


def test_model_test_of_an_endpoint_no_longer_allowed_is_refused_and_sends_nothing(api_client, fake_llm, settings):
    model = make_model(api_client, fake_llm.url)
    settings.MODEL_ENDPOINT_ALLOWLIST = []  # the operator removed it (or the config predates the guard)
    _assert_refused(api_client.post(f"/api/v1/models/{model['model_id']}/test"), "loopback")
    assert fake_llm.requests == []


@pytest.mark.parametrize("stream", [True, False])
def test_a_chat_turn_to_an_endpoint_no_longer_allowed_is_refused(api_client, fake_llm, settings, stream):
    make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    settings.MODEL_ENDPOINT_ALLOWLIST = []
    response = (ask if stream else ask_json)(api_client, cid, "Q")
    _assert_refused(response, "loopback")
    assert fake_llm.requests == []
    assert Conversation.objects.get(conversation_id=cid).turns == []


@pytest.mark.parametrize("stream", [True, False])
def test_a_name_that_resolves_to_loopback_when_connecting_is_refused_there(api_client, fake_llm, settings, stream):
    """The name is checked where the client connects, on the address it connects to: what it resolved to when
    the config was saved does not matter (DNS rebinding)."""
    url = f"http://localhost:{fake_llm.port}/v1"
    settings.MODEL_ENDPOINT_ALLOWLIST = [url]
    make_model(api_client, url)
    cid = make_conversation(api_client)
    settings.MODEL_ENDPOINT_ALLOWLIST = []
    if stream:
        events = sse_events(ask(api_client, cid, "Q"))
        assert events[-1][0] == "error"
        message = events[-1][1]["message"]
    else:
        response = ask_json(api_client, cid, "Q")
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "model_endpoint_refused"
        message = response.json()["error"]["message"]
    assert "resolves to a loopback address, which is not allowed" in message
    assert fake_llm.requests == []
    turn = Conversation.objects.get(conversation_id=cid).turns[-1]
    assert turn.status == "failed" and "loopback" in turn.error


def test_a_redirect_is_never_followed(api_client, fake_llm, internal_service):
    model = make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    fake_llm.mode = "redirect"
    for target in (f"{internal_service.url}/v1/chat/completions",  # another host (loopback, another port)
                   "http://169.254.169.254/latest/meta-data/",
                   f"{fake_llm.url}/chat/completions"):  # even to the allowed URL itself
        fake_llm.redirect_to = target
        result = api_client.post(f"/api/v1/models/{model['model_id']}/test").json()
        assert result["ok"] is False and "redirect (307)" in result["error"] and "not followed" in result["error"]
        events = sse_events(ask(api_client, cid, "Q"))
        assert events[-1][0] == "error" and "not followed" in events[-1][1]["message"]
        response = ask_json(api_client, cid, "Q")
        assert response.status_code == 502 and "not followed" in response.json()["error"]["message"]
    assert internal_service.hits == []


def test_an_upstream_body_is_never_echoed(api_client, fake_llm):
    model = make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    fake_llm.mode = "500"  # answers {"error": {"message": "model crashed"}}
    result = api_client.post(f"/api/v1/models/{model['model_id']}/test").json()
    assert result["ok"] is False and result["error"] == "The model endpoint answered with HTTP status 500."
    events = sse_events(ask(api_client, cid, "Q"))
    response = ask_json(api_client, cid, "Q")
    for text in (json.dumps(events), response.content.decode(),
                 json.dumps([t.error for t in Conversation.objects.get(conversation_id=cid).turns])):
        assert "500" in text and "model crashed" not in text


def test_no_proxy_is_taken_from_the_environment(api_client, fake_llm, monkeypatch):
    """A proxy in the environment would connect in the guard's place (and see every request)."""
    model = make_model(api_client, fake_llm.url)
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as proxy:
        address = f"http://127.0.0.1:{proxy.server_address[1]}"
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
            monkeypatch.setenv(name, address)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        llm._http.reset()  # a client built now, with the proxy variables set
        try:
            result = api_client.post(f"/api/v1/models/{model['model_id']}/test").json()
        finally:
            llm._http.reset()
    assert result["ok"] is True, result
    assert fake_llm.count == 1
