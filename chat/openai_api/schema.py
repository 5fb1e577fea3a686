"""The OpenAPI document of /api/v1/openai/: its own tag, and OpenAI's error object on every error response."""

from layra.openapi import ERROR_REF, ApiAutoSchema

OPENAI_ERROR_REF = {"$ref": "#/components/schemas/OpenAIError"}


class OpenAIAutoSchema(ApiAutoSchema):
    def get_tags(self) -> list[str]:
        return ["openai"]

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        for response in (operation or {}).get("responses", {}).values():
            content = response.get("content", {}).get("application/json", {})
            if content.get("schema") == ERROR_REF:
                content["schema"] = OPENAI_ERROR_REF
        return operation
