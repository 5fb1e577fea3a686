import re
import time
import uuid

from layra.logging import request_id_var

_VALID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Takes X-Request-ID (or makes one), exposes it to logs and echoes it back.

    Also answers `Server-Timing: app;dur=<ms>`, the time Django took until the response (its first byte for a
    stream): browsers show it beside the network time, and bench_api separates server time from queueing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        # Not reset afterwards: Django logs the response after the middleware returns.
        request_id_var.set(request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        response["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response
