"""The OpenAPI document's conventions in one place: a tag per app, one `Error` component documented on every error
response, and the slash-less aliases of the routes marked deprecated (they are the same views, kept for old
clients; see layra/routes.py)."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import AllowAny

from layra.routes import is_exempt

ERROR_REF = {"$ref": "#/components/schemas/Error"}
EVENT_STREAM = "text/event-stream"


def event_schema(events: list[str], data: str) -> dict:
    """One server-sent event as OpenAPI 3.0 can say it: its name among `events`, its data a JSON text."""
    return {"type": "object", "properties": {
        "event": {"type": "string", "enum": events},
        "data": {"type": "string", "description": data},
        "id": {"type": "string"},
    }, "required": ["event", "data"]}


ERROR_EVENT = event_schema(["error"], "The Error JSON.")

# {"error": {"code", "message", "details"}}: layra.errors.error_body, what the exception handler answers.
ERROR_COMPONENT = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable code, e.g. not_found, "
                                                          "validation_error, unsupported_media_type."},
                "message": {"type": "string", "description": "Human-readable explanation."},
                "details": {"type": "object", "additionalProperties": True,
                            "description": "Per-field messages for validation errors; other context otherwise."},
            },
            "required": ["code", "message", "details"],
        },
    },
    "required": ["error"],
}

ERROR_DESCRIPTIONS = {
    400: "Invalid input: `validation_error` (details per field), `parse_error`, or a more specific code.",
    401: "Not authenticated (`not_authenticated`) or the credentials were refused (`authentication_failed`, ...).",
    403: "Authenticated but not allowed (`permission_denied`).",
    404: "No such resource, or one of another user (`not_found`).",
    405: "Method not allowed on this route (`method_not_allowed`).",
    409: "Conflict with the current state (`conflict`, e.g. a stale version).",
    413: "Too large (`payload_too_large`, or `file_too_large` for one uploaded file).",
    415: "Unsupported media type (`unsupported_media_type`).",
    429: "Rate limited (`rate_limited`); see the Retry-After header.",
    502: "The model endpoint failed (`model_error`).",
    503: "A backing store or worker is unavailable (`service_unavailable`, ...); retry after Retry-After.",
}

# Tag of each app's operations (the module the view lives in); layra's own views are the platform's.
TAGS = [
    {"name": "platform", "description": "API root and health probes."},
    {"name": "accounts", "description": "Registration, login, tokens, the current user and API keys."},
    {"name": "knowledge", "description": "Knowledge bases, files, ingestion tasks and search."},
    {"name": "chat", "description": "Model configurations and conversations (answers stream as SSE)."},
    {"name": "openai", "description": "OpenAI-compatible chat completions over your knowledge bases (OpenAI's "
                                      "shapes and errors; base_url <server>/api/v1/openai)."},
    {"name": "workflows", "description": "Workflows, runs (events stream as SSE), custom nodes and chatflows."},
    {"name": "operations", "description": "The trash: deleted knowledge bases, files, conversations and workflows, "
                                          "restored or purged."},
]
_APP_TAGS = {"layra": "platform"}


def moved_to_trash() -> dict:
    """The 204 of a DELETE that moves the item to the trash (operations.trash) instead of removing it."""
    return {204: OpenApiResponse(description="Moved to the trash: GET trash/ lists it, POST "
                                             "trash/{kind}/{id}/restore/ brings it back, DELETE trash/{kind}/{id}/ "
                                             "purges it now; the nightly cleanup purges it after "
                                             "TRASH_RETENTION_DAYS.")}


def event_stream(events: list[str], data: str) -> OpenApiResponse:
    """A `text/event-stream` response of the named events (list them in the operation's description too)."""
    return OpenApiResponse(event_schema(events, data),
                           description="Server-sent events: " + ", ".join(f"`{e}`" for e in events) + ".")


def errors(*statuses: int) -> dict:
    """Extra error responses for an operation's `extend_schema(responses=...)`, each with the Error schema."""
    return {status: OpenApiResponse(ERROR_REF, description=ERROR_DESCRIPTIONS[status]) for status in statuses}


def is_alias(path: str) -> bool:
    """Every route ends with a slash; a path without one is the deprecated alias of the route with one (except
    under the exempt prefixes: layra.routes.is_exempt)."""
    return not path.endswith("/") and not is_exempt(path)


class ApiAutoSchema(AutoSchema):
    def get_tags(self) -> list[str]:
        app = type(self.view).__module__.split(".")[0]
        return [_APP_TAGS.get(app, app)]

    def get_operation_id(self) -> str:
        operation_id = super().get_operation_id()
        if self.method == "GET" and _answers_a_page(self.get_response_serializers()):
            return operation_id.removesuffix("_retrieve").removesuffix("_list") + "_list"  # as a bare array was
        return operation_id

    def _get_request_body(self, direction="request"):
        """A DELETE documents its JSON body when its view says it takes one (`delete_takes_body = True`, e.g.
        `DELETE auth/me/`: the password); drf-spectacular documents bodies of POST, PUT and PATCH only."""
        if self.method != "DELETE" or not getattr(self.view, "delete_takes_body", False):
            return super()._get_request_body(direction)
        self.method = "POST"
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        if is_alias(path):
            operation["operationId"] += "_noslash"  # the alias and its route would share an id otherwise
            operation["deprecated"] = True
            operation["description"] = (f"Deprecated alias of `{path}/` (same view, no redirect). "
                                        + operation.get("description", "")).strip()
        for status in self._default_error_statuses(operation, path):
            operation["responses"].setdefault(str(status), _error_response(status))
        if any(renderer.media_type == EVENT_STREAM for renderer in self.view.renderer_classes):
            self._errors_as_events(operation)
        return operation

    @staticmethod
    def _errors_as_events(operation: dict) -> None:
        """An SSE view renders an error before its stream opens as one `error` event when the client asks for
        text/event-stream (layra.sse.EventStreamRenderer)."""
        for status, response in operation["responses"].items():
            content = response.get("content", {})
            if status[0] in "45" and content.get("application/json", {}).get("schema") == ERROR_REF:
                content[EVENT_STREAM] = {"schema": ERROR_EVENT}

    def _default_error_statuses(self, operation: dict, path: str) -> list[int]:
        """The errors any operation of this shape can answer; views add the others with errors(...)."""
        statuses = [503]
        if "requestBody" in operation or any(p["in"] == "query" for p in operation.get("parameters", [])):
            statuses.append(400)
        if any(not isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            statuses.append(401)
        if self.view.get_throttles():
            statuses.append(429)
        if "{" in path or any(p["name"] == "page" for p in operation.get("parameters", [])):
            statuses.append(404)  # a missing resource, or a page past the last
        return statuses


def _answers_a_page(responses) -> bool:
    if isinstance(responses, dict):
        responses = responses.get(200)
    return getattr(responses, "is_page", False)


def _error_response(status: int) -> dict:
    return {"description": ERROR_DESCRIPTIONS[status], "content": {"application/json": {"schema": ERROR_REF}}}


def document_conventions(result, generator, request, public):
    """Postprocessing hook: the one Error schema every error response refers to, and the tags' descriptions."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_COMPONENT
    result["tags"] = TAGS
    return result
