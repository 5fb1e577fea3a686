"""One exception handler: every error becomes {"error": {"code", "message", "details"}}."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from layra import errors

logger = logging.getLogger(__name__)

_DRF_CODES = {
    drf.ParseError: "parse_error",
    drf.ValidationError: "validation_error",
    drf.NotAuthenticated: "not_authenticated",
    drf.AuthenticationFailed: "authentication_failed",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "rate_limited",
}


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _store_unavailable(exc: Exception) -> bool:
    """Connection failures of our stores become 503, never a 500 traceback."""
    names = {type(exc).__name__, *(type(e).__name__ for e in _causes(exc))}
    unavailable = {
        "ConnectionError", "TimeoutError", "ServerSelectionTimeoutError", "AutoReconnect", "NetworkTimeout",
        "MilvusUnavailableException", "EndpointConnectionError", "ConnectTimeoutError", "OperationalError",
        "ConnectionRefusedError", "MilvusException", "ReadTimeoutError", "ConnectionClosedError",
        "_InactiveRpcError",  # grpc (Milvus): UNAVAILABLE / DEADLINE_EXCEEDED before pymilvus wraps it
    }
    return bool(names & unavailable)


def _causes(exc: BaseException):
    seen = 0
    while exc.__cause__ or exc.__context__:
        exc = exc.__cause__ or exc.__context__
        yield exc
        seen += 1
        if seen > 5:
            return


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):  # Django's own body limits (DATA_UPLOAD_MAX_MEMORY_SIZE)
        exc = errors.PayloadTooLarge("The request body is too large.")
    if isinstance(exc, errors.DomainError):
        response = Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
        if isinstance(exc, errors.RateLimited):
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is not None:
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
        if isinstance(exc, drf.ValidationError):
            details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
            response.data = error_body(code, "Invalid input.", details)
        else:
            detail = getattr(exc, "detail", str(exc))
            response.data = error_body(code, str(detail))
        return response

    if _store_unavailable(exc):
        logger.warning("store unavailable: %s", type(exc).__name__)
        return Response(error_body("service_unavailable", errors.ServiceUnavailable.default_message), status=503,
                        headers={"Retry-After": "5"})
    logger.exception("unhandled error")
    return Response(error_body("server_error", "Internal server error."), status=500)
