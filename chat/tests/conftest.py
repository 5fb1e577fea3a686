"""A tiny OpenAI-compatible server on loopback: the only fake in chat tests (an external LLM endpoint)."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class FakeLLM:
    """Serves /v1/chat/completions (streaming and not) and records every request body.

    mode: "ok", "401", "500", "garbage" (200 with a non-JSON body), "slow" (answers after `delay` s),
    "stall" (sends one token then hangs for `delay` s).
    """

    def __init__(self):
        self.mode = "ok"
        self.reply = "The answer is 42."
        self.delay = 5.0
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.usage = {"prompt_tokens": 123, "completion_tokens": 7, "total_tokens": 130}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def last(self) -> dict:
        return self.requests[-1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(body)
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, b'{"error": {"message": "no such route"}}')
                if fake.mode == "401":
                    return self._send(401, json.dumps({"error": {"message": "Incorrect API key provided",
                                                                 "type": "invalid_request_error",
                                                                 "code": "invalid_api_key"}}).encode())
                if fake.mode == "500":
                    return self._send(500, b'{"error": {"message": "model crashed"}}')
                if fake.mode == "garbage":
                    return self._send(200, b"<html>definitely not json</html>", "text/html")
                if fake.mode == "slow":
                    time.sleep(fake.delay)
                words = [w + " " for w in fake.reply.split(" ")]
                words[-1] = words[-1].rstrip()
                if not body.get("stream"):
                    return self._send(200, json.dumps({
                        "id": "cmpl-1", "object": "chat.completion", "created": 0, "model": body.get("model"),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": fake.reply}}],
                        "usage": fake.usage,
                    }).encode())
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                try:
                    for i, word in enumerate(words):
                        chunk = {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 0,
                                 "model": body.get("model"),
                                 "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        if fake.mode == "stall" and i == 0:
                            time.sleep(fake.delay)
                    final = {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 0,
                             "model": body.get("model"), "choices": [], "usage": fake.usage}
                    self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler


@pytest.fixture
def fake_llm():
    server = FakeLLM()
    yield server
    server.close()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
