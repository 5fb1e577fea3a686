"""One exception handler: every error becomes {"error": {"code", "message", "details"}}."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from layra import errors
from layra.errors import error_body
from layra.store_errors import store_unavailable

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

    if store_unavailable(exc):
        # With its traceback: which store, which call. Not an error of ours, so a warning.
        logger.warning("store unavailable: %s", type(exc).__name__, exc_info=exc)
        return Response(error_body("service_unavailable", errors.ServiceUnavailable.default_message), status=503,
                        headers={"Retry-After": "5"})
    logger.exception("unhandled error")
    return Response(error_body("server_error", "Internal server error."), status=500)
