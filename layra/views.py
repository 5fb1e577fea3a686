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

    @extend_schema(responses=inline_serializer("Live", {"status": serializers.CharField()}))
    def get(self, request):
        return Response({"status": "ok"})


class HealthReadyApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        responses={
            200: inline_serializer("Ready", {"status": serializers.CharField(), "checks": serializers.DictField()}),
            503: inline_serializer("NotReady", {"status": serializers.CharField(), "checks": serializers.DictField()}),
        }
    )
    def get(self, request):
        ok, checks = readiness()
        return Response({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)
