import re
import time
import uuid

from django.conf import settings
from django.http import JsonResponse

from layra.errors import error_body
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


class RequestSizeLimitMiddleware:
    """Refuses an oversized request from its Content-Length before anything reads the body: 413, JSON error shape.

    Multipart bodies (uploads, every file together) may be MAX_UPLOAD_REQUEST_BYTES; any other body (JSON, forms)
    DATA_UPLOAD_MAX_MEMORY_SIZE. A body without a Content-Length is never read by Django (it sees it as empty)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        multipart = request.META.get("CONTENT_TYPE", "").lower().startswith("multipart/")
        limit = settings.MAX_UPLOAD_REQUEST_BYTES if multipart else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return payload_too_large(length=length, limit=limit)
        return self.get_response(request)


def payload_too_large(*, length: int, limit: int):

    return JsonResponse(error_body("payload_too_large", f"The request body is {length} bytes; the limit is {limit}.",
                                   {"limit_bytes": limit}), status=413)
