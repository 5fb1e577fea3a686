import json
import logging
import os
import subprocess
import sys

from tests.plugin import ROOT

PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "x" * 20 + "production-secret-key-with-enough-entropy-0123456789",
    "ALLOWED_HOSTS": "layra.example",
    "CORS_ALLOWED_ORIGINS": "https://app.layra.example",
    "DATABASE_URL": "mysql://layra:pw@db:3306/layra",
}


def _clean_env(extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env.update(extra)
    env.pop("SECURE_SSL_REDIRECT", None)
    env.pop("SECURE_HSTS_SECONDS", None)
    return env


def test_check_deploy_is_clean_with_production_env():
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                            env=_clean_env(PRODUCTION_ENV), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_debug_and_weak_key():
    env = {**PRODUCTION_ENV, "DEBUG": "true", "SECRET_KEY": "short"}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                            env=_clean_env(env), capture_output=True, text=True)
    assert result.returncode != 0


def test_cors_allows_only_the_configured_origin(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.layra.example"]
    ok = client.options("/api/v1/health/live", HTTP_ORIGIN="https://app.layra.example",
                        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert ok["Access-Control-Allow-Origin"] == "https://app.layra.example"
    other = client.options("/api/v1/health/live", HTTP_ORIGIN="https://evil.example",
                           HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert "Access-Control-Allow-Origin" not in other


def test_secure_headers_on_api_responses(client):
    response = client.get("/api/v1/health/live")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_json_logs_redact_secret_fields():
    from layra.logging import JsonFormatter

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "model saved", None, None)
    record.extra_fields = {"api_key": "sk-live-123", "password": "hunter2", "model": "gpt"}
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert "sk-live-123" not in line and "hunter2" not in line
    assert entry["model"] == "gpt"
