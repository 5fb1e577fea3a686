from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from layra.health import readiness

_check = inline_serializer("StoreCheck", {"status": serializers.CharField(), "latency_ms": serializers.FloatField()})


class HealthLiveApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(summary="Liveness: the process answers",
                   responses=inline_serializer("Live", {"status": serializers.CharField()}))
    def get(self, request):
        return Response({"status": "ok"})


class HealthReadyApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        summary="Readiness: every backing store answers (503 otherwise)",
        responses={
            200: inline_serializer("Ready", {"status": serializers.CharField(), "checks": serializers.DictField()}),
            503: inline_serializer("NotReady", {"status": serializers.CharField(), "checks": serializers.DictField()}),
        }
    )
    def get(self, request):
        ok, checks = readiness()
        return Response({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)


# The resources of /api/v1/, by URL name: what a client starts from.
API_RESOURCES = {
    "auth_login": "auth-login",
    "auth_register": "auth-register",
    "me": "auth-me",
    "api_keys": "auth-api-keys",
    "knowledge_bases": "knowledge-bases",
    "search": "search",
    "models": "model-list",
    "conversations": "conversation-list",
    "workflows": "workflow-list",
    "custom_nodes": "custom-node-list",
    "chatflows": "chatflow-list",
    "openai_models": "openai-models",  # OpenAI-compatible: base_url is this without /models
    "mcp": "mcp",  # MCP over streamable HTTP (POST, API key)
    "trash": "trash",
    "health_live": "health-live",
    "health_ready": "health-ready",
    "schema": "schema",
    "docs": "docs",
}


class ApiRootApi(APIView):
    """The API's entry point: a link to each resource, and where the OpenAPI document is."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(summary="The API's resources (links)", responses=inline_serializer("ApiRoot", {
        "version": serializers.CharField(), "resources": serializers.DictField(child=serializers.URLField())}))
    def get(self, request):
        links = {key: request.build_absolute_uri(reverse(name)) for key, name in API_RESOURCES.items()}
        return Response({"version": "v1", "resources": links})
