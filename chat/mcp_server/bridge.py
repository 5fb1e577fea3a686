"""/mcp: the MCP server (tools.py) over streamable HTTP, served by the product's own WSGI app.

Why this way (DECISIONS asks): production serves Django under gunicorn's gthread workers (WSGI), whose threads
also hold the SSE streams of answers and progress. An ASGI mount would need another server (uvicorn workers or a
second process and a proxy route) and would change how every SSE endpoint is served. Instead the SDK's own
streamable-HTTP transport runs in **stateless JSON mode** inside an ordinary Django view: each MCP message is one
POST answered with one JSON body, so

- any worker and thread can answer any request: no session lives in a process (there are several workers and
  hosts), and nothing outlives its request;
- a request holds its gthread thread only while it is answered (a search, an answer), like any API call; there
  is no long-lived GET stream: GET and DELETE answer 405 here, the spec's answer for a server that offers no
  server-to-client stream and no session to end (the SDK would keep a GET open, holding a thread for nothing);
- the SDK's protocol handling (initialize, tools/list, tools/call, resources, errors, protocol versions) is the
  official one, unchanged; this view only turns the Django request into an ASGI call and back.

The event loop for that call is asgiref's (async_to_sync); the tools hand the product's synchronous code back to
this request's thread (sync_to_async), so the ORM never runs inside the loop. Authentication is the product's API
key (X-API-Key, or Authorization: Bearer lyr_...): no key, no MCP.
"""

import anyio
from asgiref.sync import async_to_sync
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from rest_framework import exceptions as drf

from accounts.authentication import ApiKeyAuthentication
from accounts.ratelimit import rate_limit
from chat.mcp_server.tools import current_request, server
from layra.client_ip import client_ip
from layra.errors import RateLimited, error_body

HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length"}


def _refused(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse(error_body(code, message), status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="mcp"'
    return response


def _scope(request: HttpRequest) -> dict:
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in request.headers.items()]
    host = request.get_host()
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": request.method,
            "scheme": request.scheme, "path": request.path, "raw_path": request.path.encode(), "root_path": "",
            "query_string": request.META.get("QUERY_STRING", "").encode("latin-1"), "headers": headers,
            "server": (host.rsplit(":", 1)[0], int(request.get_port())), "client": (client_ip(request) or "", 0)}


async def _serve(request: HttpRequest, scope: dict, body: bytes) -> tuple[int, list, bytes]:
    """One MCP HTTP exchange through the SDK's stateless transport; (status, headers, body)."""
    token = current_request.set(request)
    done = anyio.Event()
    received = False
    status, headers, chunks = 500, [], []

    async def receive() -> dict:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()  # the client "disconnects" once the answer is complete
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], message.get("headers", [])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    try:
        manager = StreamableHTTPSessionManager(app=server._lowlevel_server, stateless=True, json_response=True)
        async with manager.run():
            await manager.handle_request(scope, receive, send)
    finally:
        done.set()
        current_request.reset(token)
    return status, headers, b"".join(chunks)


@csrf_exempt
def mcp_endpoint(request: HttpRequest) -> HttpResponse:
    try:
        authenticated = ApiKeyAuthentication().authenticate(request)
    except drf.AuthenticationFailed as exc:
        return _refused(401, "authentication_failed", str(exc.detail))
    if authenticated is None:
        return _refused(401, "not_authenticated", "MCP needs an API key: X-API-Key or Authorization: Bearer lyr_...")
    request.user = authenticated[0]
    if request.method != "POST":
        response = _refused(405, "method_not_allowed", f"Method \"{request.method}\" not allowed: MCP messages are "
                                                        "POSTed here (stateless; no server-to-client stream).")
        response["Allow"] = "POST"
        return response
    try:
        rate_limit(request=request, scope="write")  # each MCP message, like any API write
        body = request.body
    except RateLimited as exc:
        response = _refused(429, exc.code, exc.message)
        response["Retry-After"] = str(exc.retry_after)
        return response
    except RequestDataTooBig:
        return _refused(413, "payload_too_large", "The request body is too large.")
    status, headers, content = async_to_sync(_serve)(request, _scope(request), body)
    response = HttpResponse(content, status=status)
    for name, value in headers:
        if name.lower() not in HOP_BY_HOP:
            response[name.decode("latin-1")] = value.decode("latin-1")
    return response
