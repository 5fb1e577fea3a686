"""OpenAI's error shape on /api/v1/openai/: {"error": {"message", "type", "param", "code"}}.

The product's one exception handler (layra.exception_handler) decides the status and the code; this only reshapes
its body, so a domain error means the same here as anywhere else in the API."""

from django.http import JsonResponse
from rest_framework import serializers

from layra.exception_handler import exception_handler as layra_exception_handler

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "invalid_request_error", 405: "invalid_request_error", 409: "invalid_request_error",
          413: "invalid_request_error", 415: "invalid_request_error", 429: "rate_limit_error"}


def openai_error(*, status: int, code: str, message: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": _TYPES.get(status, "api_error"), "param": param, "code": code}}


def _param(details: dict) -> str | None:
    """The first invalid field of a validation error, as OpenAI names it (`messages`, `model`, ...)."""
    if not isinstance(details, dict):
        return None
    return next((str(name) for name in details if name != "non_field_errors"), None)


def _message(message: str, details: dict) -> str:
    if message != "Invalid input." or not isinstance(details, dict):
        return message
    parts = [f"{name}: {value[0] if isinstance(value, list) and value else value}" for name, value in details.items()]
    return "Invalid input. " + "; ".join(parts)


def exception_handler(exc, context):
    response = layra_exception_handler(exc, context)
    body = (response.data or {}).get("error", {})
    details = body.get("details") or {}
    response.data = openai_error(status=response.status_code, code=body.get("code", "error"),
                                 message=_message(body.get("message", ""), details), param=_param(details))
    return response


def not_found(request, path: str = ""):
    """Any other path under /api/v1/openai/."""
    return JsonResponse(openai_error(status=404, code="not_found", message=f"No such route: {request.path}"),
                        status=404)


class OpenAIErrorDetailSerializer(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField(help_text="invalid_request_error, authentication_error, permission_error, "
                                           "rate_limit_error or api_error")
    param = serializers.CharField(allow_null=True, help_text="The invalid request field, if one")
    code = serializers.CharField(allow_null=True, help_text="The product's error code (not_found, "
                                                            "model_not_found, validation_error, ...)")


class OpenAIErrorSerializer(serializers.Serializer):
    error = OpenAIErrorDetailSerializer()
