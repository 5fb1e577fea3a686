"""Domain errors. Services raise these; one DRF exception handler (layra/exception_handler.py) maps them to HTTP,
in the one JSON shape every error has."""


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


class DomainError(Exception):
    status_code = 400
    code = "error"
    default_message = "Request failed."

    def __init__(self, message: str | None = None, *, code: str | None = None, details: dict | None = None):
        self.message = message or self.default_message
        if code:
            self.code = code
        self.details = details or {}
        super().__init__(self.message)


class ValidationError(DomainError):
    status_code = 400
    code = "validation_error"
    default_message = "Invalid input."


class AuthenticationFailed(DomainError):
    status_code = 401
    code = "authentication_failed"
    default_message = "Authentication failed."


class PermissionDenied(DomainError):
    status_code = 403
    code = "permission_denied"
    default_message = "You do not have permission to do this."


class NotFound(DomainError):
    status_code = 404
    code = "not_found"
    default_message = "Not found."


class Conflict(DomainError):
    status_code = 409
    code = "conflict"
    default_message = "Conflict with the current state."


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"
    default_message = "Payload too large."


class UnsupportedMediaType(DomainError):
    status_code = 415
    code = "unsupported_media_type"
    default_message = "Unsupported media type."


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"
    default_message = "Too many requests."

    def __init__(self, message: str | None = None, *, retry_after: int = 1, **kwargs):
        self.retry_after = max(1, int(retry_after))
        super().__init__(message, **kwargs)


class ServiceUnavailable(DomainError):
    status_code = 503
    code = "service_unavailable"
    default_message = "A backing service is unavailable; try again shortly."


class ModelProviderError(DomainError):
    """The model endpoint failed (non-streaming answers); the turn is stored as failed."""

    status_code = 502
    code = "model_error"
    default_message = "The model endpoint failed."
