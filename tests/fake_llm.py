"""A tiny OpenAI-compatible server on loopback, reusable by tests and the bench_api command.

The only fake in the cross-app tests: an external LLM endpoint. It serves

- POST /v1/chat/completions: JSON, or SSE chunks when the body has "stream": true;
- GET  /v1/models: the one model it pretends to host;

records every request (body and headers) and has failure modes: "ok", "401", "500",
"garbage" (200 with a non-JSON body), "slow" (answers after `delay` s) and "stall" (one
token, then a `delay` s pause mid-stream), "reset" (closes the connection without a reply), "redirect" (307 to
`redirect_to`). `latency` (s) is
the time every answer takes to start, as a real model's does. `reply` is the answer, or a function of the
request body giving it (an echo of the prompt, say).
"""

import argparse
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MODES = ("ok", "401", "500", "garbage", "slow", "stall", "reset", "redirect")


class FakeLLM:
    def __init__(self, *, reply: str | Callable[[dict], str] = "The answer is 42.", model: str = "fake-vision-model",
                 record: bool = True, latency: float = 0.0, port: int | None = None):
        """`port` None: the test run's reserved port (LAYRA_TEST_FAKE_LLM_PORT, whose URL the run allowlists),
        else a free one; 0: a free one."""
        self.record = record  # False keeps no request bodies (a long load test sends thousands of page images)
        self._count = 0
        self.latency = latency
        self.mode = "ok"
        self.reply = reply
        self.model = model
        self.delay = 5.0
        self.redirect_to = ""
        self.usage = {"prompt_tokens": 123, "completion_tokens": 7, "total_tokens": 130}
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        if port is None:
            port = int(os.environ.get("LAYRA_TEST_FAKE_LLM_PORT") or 0)
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-llm", daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        """The base URL a model config points at (OpenAI style, ends with /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def last(self) -> dict:
        return self.requests[-1]

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        # Kept-alive connections too: the next fake listens on the same port, and a client's pooled connection
        # must not reach this one's handler.
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> "FakeLLM":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _record(self, body: dict, headers) -> None:
        with self._lock:
            self._count += 1
            if self.record:
                self.requests.append(body)
                self.headers.append({k.lower(): v for k, v in headers.items()})

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with fake._lock:
                    fake._connections.add(self.connection)

            def finish(self):
                with fake._lock:
                    fake._connections.discard(self.connection)
                super().finish()

            def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path.rstrip("/").endswith("/_count"):
                    return self._send(200, json.dumps({"count": fake.count}).encode())
                if self.path.rstrip("/").endswith("/models"):
                    return self._send(200, json.dumps({"object": "list", "data": [
                        {"id": fake.model, "object": "model", "created": 0, "owned_by": "fake"}]}).encode())
                return self._send(404, b'{"error": {"message": "no such route"}}')

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                fake._record(body, self.headers)
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, b'{"error": {"message": "no such route"}}')
                mode = fake.mode
                if mode == "reset":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                if mode == "401":
                    return self._send(401, json.dumps({"error": {
                        "message": "Incorrect API key provided", "type": "invalid_request_error",
                        "code": "invalid_api_key"}}).encode())
                if mode == "redirect":
                    self.send_response(307)
                    self.send_header("Location", fake.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if mode == "500":
                    return self._send(500, b'{"error": {"message": "model crashed"}}')
                if mode == "garbage":
                    return self._send(200, b"<html>definitely not json</html>", "text/html")
                if mode == "slow":
                    time.sleep(fake.delay)
                if fake.latency:
                    time.sleep(fake.latency)
                model = body.get("model") or fake.model
                reply = fake.reply(body) if callable(fake.reply) else fake.reply
                if not body.get("stream"):
                    return self._send(200, json.dumps({
                        "id": "cmpl-1", "object": "chat.completion", "created": 0, "model": model,
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": reply}}],
                        "usage": fake.usage,
                    }).encode())
                self._stream(model, mode, reply)
                return None

            def _stream(self, model: str, mode: str, reply: str) -> None:
                words = [w + " " for w in reply.split(" ")]
                words[-1] = words[-1].rstrip()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    for i, word in enumerate(words):
                        chunk = {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model,
                                 "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        if mode == "stall" and i == 0:
                            time.sleep(fake.delay)
                    final = {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model,
                             "choices": [], "usage": fake.usage}
                    self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler


class FakeLLMProcess:
    """The fake served from a process of its own, keeping no request bodies: a load test's client threads then
    do not share their interpreter with the parsing of every model request (each carries page images), which
    would add to the latencies they measure. The model is another host's work in production."""

    def __init__(self, *, reply: str = "The answer is 42.", latency_ms: float = 0, start_timeout: float = 30):
        self.process = subprocess.Popen([sys.executable, "-m", "tests.fake_llm", "--reply", reply,
                                         "--latency-ms", str(latency_ms)],
                                        cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE,
                                        text=True)
        ready, _, _ = select.select([self.process.stdout], [], [], start_timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line.strip().isdigit():
            self.close()
            raise RuntimeError("the fake LLM process did not start")
        self.port = int(line)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def count(self) -> int:
        """Requests served so far (asked of the process; -1 once it is gone)."""
        import httpx

        try:
            return httpx.get(f"{self.url}/_count", timeout=5).json()["count"]
        except (httpx.HTTPError, ValueError, KeyError):
            return -1

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def refused_url() -> str:
    """A loopback URL nobody listens on (in a test run, the one the run allowlists for this)."""
    if os.environ.get("LAYRA_TEST_REFUSED_LLM_PORT"):
        return f"http://127.0.0.1:{os.environ['LAYRA_TEST_REFUSED_LLM_PORT']}/v1"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


if __name__ == "__main__":  # python -m tests.fake_llm: serve until terminated, print the port first
    parser = argparse.ArgumentParser()
    parser.add_argument("--reply", default="The answer is 42.")
    parser.add_argument("--latency-ms", type=float, default=0)
    arguments = parser.parse_args()
    served = FakeLLM(reply=arguments.reply, record=False, latency=arguments.latency_ms / 1000, port=0)
    print(served.port, flush=True)
    served.thread.join()
