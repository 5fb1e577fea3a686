import pytest
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from layra import errors


class _RaiseApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    def get(self, request, kind):
        raise {
            "conflict": errors.Conflict("Name taken.", details={"field": "name"}),
            "ratelimited": errors.RateLimited("Slow down.", retry_after=7),
            "unavailable": errors.ServiceUnavailable(),
            "crash": RuntimeError("secret internals"),
            "redis": __import__("redis").exceptions.ConnectionError("down"),
        }[kind]


urlpatterns = [path("raise/<str:kind>", _RaiseApi.as_view())]


def _assert_shape(body):
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}


@pytest.mark.django_db
def test_unknown_route_under_api_is_json_404(api_client):
    response = api_client.get("/api/v1/knowledge-bases/does-not-exist/nothing")
    assert response.status_code == 404


@pytest.mark.django_db
def test_unauthenticated_request_is_401_in_error_shape(anon_client):
    from layra.health import CHECKS  # noqa: F401 - any protected route will do

    response = anon_client.get("/api/v1/auth/me")
    if response.status_code == 404:
        pytest.skip("auth routes not present")
    assert response.status_code == 401
    _assert_shape(response.json())


@pytest.mark.urls("layra.tests.test_errors")
@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("conflict", 409, "conflict"),
        ("ratelimited", 429, "rate_limited"),
        ("unavailable", 503, "service_unavailable"),
        ("crash", 500, "server_error"),
        ("redis", 503, "service_unavailable"),
    ],
)
def test_domain_errors_map_to_status_and_shape(client, kind, status, code):
    response = client.get(f"/raise/{kind}")
    assert response.status_code == status
    body = response.json()
    _assert_shape(body)
    assert body["error"]["code"] == code
    assert "secret internals" not in response.content.decode()
    if kind == "ratelimited":
        assert response["Retry-After"] == "7"
    if kind == "conflict":
        assert body["error"]["details"] == {"field": "name"}


@pytest.mark.django_db
def test_request_id_is_echoed(anon_client):
    response = anon_client.get("/api/v1/health/live", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    response = anon_client.get("/api/v1/health/live", HTTP_X_REQUEST_ID="bad id\n")
    assert response["X-Request-ID"] != "bad id\n"


@pytest.mark.django_db
def test_every_response_carries_its_server_time(api_client):
    from operations.management.commands.bench_api import _server_timing_ms

    for response in (api_client.get("/api/v1/health/live"), api_client.get("/api/v1/knowledge-bases/"),
                     api_client.get("/api/v1/knowledge-bases/nope/")):
        header = response["Server-Timing"]
        assert header.startswith("app;dur=")
        assert 0 < _server_timing_ms(header) < 60_000
    assert _server_timing_ms("db;dur=3, app;desc=\"x\";dur=12.5") == 12.5
    assert _server_timing_ms("app;dur=oops") is None and _server_timing_ms("") is None


def test_domain_error_codes_are_the_handlers_for_the_same_status():
    """One code per meaning: a domain error whose status DRF also raises answers DRF's code (a 415 is
    unsupported_media_type whichever raised it)."""
    from rest_framework import exceptions as drf

    from layra.exception_handler import _DRF_CODES

    same = {errors.ValidationError: drf.ValidationError, errors.AuthenticationFailed: drf.AuthenticationFailed,
            errors.PermissionDenied: drf.PermissionDenied, errors.NotFound: drf.NotFound,
            errors.UnsupportedMediaType: drf.UnsupportedMediaType, errors.RateLimited: drf.Throttled}
    assert [ours.code for ours in same] == [_DRF_CODES[theirs] for theirs in same.values()]
