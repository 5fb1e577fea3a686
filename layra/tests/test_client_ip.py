"""The client address comes from layra.client_ip alone: X-Forwarded-For only as far as NUM_PROXIES trusts it."""

import pytest
from django.test import RequestFactory

from accounts.models import AuditLog
from layra.client_ip import client_ip


def _request(remote="203.0.113.7", xff=None):
    extra = {"HTTP_X_FORWARDED_FOR": xff} if xff is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote, **extra)


def test_forwarded_for_is_ignored_without_trusted_proxies(settings):
    settings.NUM_PROXIES = 0
    assert client_ip(_request(xff="1.2.3.4")) == "203.0.113.7"
    assert client_ip(_request(xff="1.2.3.4, 5.6.7.8")) == "203.0.113.7"


@pytest.mark.parametrize(("proxies", "xff", "expected"), [
    (1, "1.2.3.4", "1.2.3.4"),
    (1, "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # the client wrote 6.6.6.6; our proxy appended what it saw
    (2, "6.6.6.6, 1.2.3.4, 10.0.0.2", "1.2.3.4"),
    (2, "1.2.3.4", "1.2.3.4"),  # shorter than the proxy chain: its leftmost entry
    (1, "", "203.0.113.7"),
    (1, "not-an-address", "203.0.113.7"),
    (1, "2001:db8::1", "2001:db8::1"),
])
def test_forwarded_for_is_read_from_the_right_with_trusted_proxies(settings, proxies, xff, expected):
    settings.NUM_PROXIES = proxies
    assert client_ip(_request(xff=xff)) == expected


def _spoofed_logins(anon_client, count):
    """Anonymous logins, each claiming another address in X-Forwarded-For."""
    return [anon_client.post("/api/v1/auth/login", {"username": "nobody", "password": "x"}, format="json",
                             REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code
            for i in range(count)]


@pytest.mark.django_db
def test_spoofed_forwarded_for_does_not_escape_the_rate_limit(settings, anon_client):
    settings.NUM_PROXIES = 0
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": "3/60"}
    settings.LOGIN_BACKOFF_FREE_FAILURES = 100
    assert _spoofed_logins(anon_client, 5) == [401, 401, 401, 429, 429]
    assert set(AuditLog.objects.filter(action="login.failure").values_list("ip", flat=True)) == {"203.0.113.7"}


@pytest.mark.django_db
def test_forwarded_for_is_honoured_behind_one_trusted_proxy(settings, anon_client):
    settings.NUM_PROXIES = 1
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": "3/60"}
    settings.LOGIN_BACKOFF_FREE_FAILURES = 100
    assert _spoofed_logins(anon_client, 5) == [401] * 5  # five clients behind the proxy, one attempt each
    ips = set(AuditLog.objects.filter(action="login.failure").values_list("ip", flat=True))
    assert ips == {f"198.51.100.{i}" for i in range(5)}
