import json
import logging
import os
import re
import subprocess
import sys
import tempfile

import jwt
import pytest

from layra import keyfiles
from tests.plugin import ROOT

# What docker-compose.yml gives the processes (keys of this run: none is a literal).
PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": keyfiles.new_secret_key(),
    "FIELD_ENCRYPTION_KEYS": keyfiles.new_field_key(),
    "ALLOWED_HOSTS": "layra.example",
    "CORS_ALLOWED_ORIGINS": "https://app.layra.example",
    "DATABASE_URL": "mysql://layra:pw@db:3306/layra",
    "SECURE_SSL_REDIRECT": "true",
}
# The literal default SECRET_KEY of earlier versions (keyfiles knows it by its hash).
OLD_DEFAULT_KEY = "dev-insecure-change-me-" + "0123456789abcdefghijklmnopqrstuvwxyz"


def _clean_env(extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env["DATA_DIR"] = tempfile.mkdtemp(prefix="layra-deploy-")
    env.update(extra)
    env.pop("SECURE_HSTS_SECONDS", None)
    return env


def test_check_deploy_is_clean_with_production_env():
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                            env=_clean_env(PRODUCTION_ENV), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_check_deploy_flags_debug_and_weak_key():
    env = {**PRODUCTION_ENV, "DEBUG": "true", "SECRET_KEY": "short"}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                            env=_clean_env(env), capture_output=True, text=True)
    assert result.returncode != 0
    assert "security.W018" in result.stderr and "security.W009" in result.stderr, result.stderr


@pytest.mark.django_db
def test_a_token_signed_with_the_old_default_key_is_refused(anon_client, user, settings):
    """The key that was in the source signed tokens a default deployment accepted; it no longer signs anything."""
    assert keyfiles.key_sha256(OLD_DEFAULT_KEY) in keyfiles.KNOWN_KEY_SHA256
    assert settings.JWT_SIGNING_KEY != OLD_DEFAULT_KEY
    login = anon_client.post("/api/v1/auth/login", {"username": user.username, "password": "correct-horse-battery"},
                             format="json")
    assert login.status_code == 200, login.content
    genuine = login.json()["access"]
    payload = jwt.decode(genuine, options={"verify_signature": False})
    forged = jwt.encode(payload, OLD_DEFAULT_KEY, algorithm="HS256")  # the same claims: a live session's
    assert anon_client.get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {genuine}").status_code == 200
    response = anon_client.get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/v1/no-such-route/"),
    ("get", "/api/v1/knowledge-bases/does-not-exist/nothing"),
    ("post", "/api/nothing"),
    ("get", "/api/"),
    ("delete", "/mcp/nothing"),  # /mcp itself is the MCP endpoint (chat/mcp_server)
    ("get", "/mcp/anything"),
])
def test_unknown_routes_under_api_and_mcp_are_json_404(api_client, method, path):
    response = getattr(api_client, method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"code": "not_found", "message": "No such route.", "details": {}}}
    assert b"urlpatterns" not in response.content and b"<html" not in response.content


@pytest.mark.django_db
def test_a_method_a_route_does_not_have_is_json_405(api_client):
    for method, path in (("delete", "/api/v1/health/live"), ("patch", "/api/v1/conversations/"),
                         ("post", "/api/v1/models/selected")):
        response = getattr(api_client, method)(path)
        assert response.status_code == 405, (method, path)
        body = response.json()
        assert body["error"]["code"] == "method_not_allowed" and set(body["error"]) == {"code", "message",
                                                                                         "details"}


def test_other_unknown_paths_belong_to_the_web_app(client):
    # DECISIONS: every path outside /api/, /mcp (and the admin, static files, /metrics) is a client-side route of
    # the web app, which answers with its page and shows its own "not found".
    response = client.get("/no-such-page")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    assert b'<div id="app"' in response.content or b"<script" in response.content


@pytest.mark.django_db
def test_metrics_need_a_token_or_an_allowed_network(client, settings):
    settings.METRICS_TOKEN = "metrics-token-of-this-test-0123456789"
    settings.METRICS_ALLOWED_NETWORKS = ["10.1.0.0/16"]
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    refused = client.get("/metrics", **outside)
    assert refused.status_code == 401 and refused["WWW-Authenticate"].startswith("Bearer")
    assert refused.json()["error"]["code"] == "not_authenticated"
    assert b"django_http" not in refused.content
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **outside).status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401  # loopback is not listed here
    allowed = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}", **outside)
    assert allowed.status_code == 200 and b"django_http_requests" in allowed.content
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ", **outside).status_code == 401


@pytest.mark.django_db
def test_metrics_default_to_loopback_only(client):
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.7").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1").status_code == 401


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


@pytest.mark.django_db
def test_make_run_demo_password_is_random_kept_private_and_replaces_the_published_one(tmp_path):
    from django.contrib.auth import get_user_model

    from operations.management.commands.serve_embedded import DEMO_USERNAME, Command

    published = "demo-password-" + "123"  # what older versions printed (and had in the source)
    demo = get_user_model().objects.create_user(DEMO_USERNAME, "demo@example.com", published)
    first = Command()._ensure_demo_user(tmp_path)
    assert first != published and len(first) >= 16
    path = tmp_path / "secrets" / "demo_password"
    assert oct(path.stat().st_mode & 0o777) == "0o600" and path.read_text().strip() == first
    demo.refresh_from_db()
    assert demo.check_password(first) and not demo.check_password(published)
    assert Command()._ensure_demo_user(tmp_path) == first  # the next start keeps it
    demo.refresh_from_db()
    assert demo.check_password(first)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, **headers) -> tuple[int, dict, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_make_run_serves_with_gunicorn_and_whitenoise_with_debug_off(tmp_path, settings):
    """serve_embedded's server: gunicorn with gunicorn.conf.py, the API and the admin's static files (collected,
    served by whitenoise, compressed) with DEBUG off, and a clean exit on SIGTERM."""
    from operations.management.commands.serve_embedded import _wait_serving, gunicorn_argv

    settings.DATA_DIR = tmp_path  # its control socket goes there
    env = {**os.environ, "DEBUG": "false", "STATIC_ROOT": str(tmp_path / "static"), "GUNICORN_WORKERS": "1",
           "GUNICORN_THREADS": "4", "GUNICORN_PRELOAD_EMBEDDER": "false"}
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                   check=True)
    port = _free_port()
    argv = gunicorn_argv("127.0.0.1", port)
    assert argv[1:5] == ["-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py")]
    assert ["--control-socket", str(tmp_path / "gunicorn.ctl")] == argv[5:7]
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_serving(server, "127.0.0.1", port)
        base = f"http://127.0.0.1:{port}"
        status, headers, body = _get(f"{base}/api/v1/health/live")
        assert status == 200 and json.loads(body)["status"] == "ok" and headers["Server"] == "gunicorn"
        status, headers, body = _get(f"{base}/static/admin/css/base.css")
        assert status == 200 and headers["Content-Type"].startswith("text/css") and b"body" in body
        status, headers, _ = _get(f"{base}/static/admin/css/base.css", **{"Accept-Encoding": "gzip"})
        assert status == 200 and headers.get("Content-Encoding") == "gzip"
        assert _get(f"{base}/static/admin/css/no-such-file.css")[0] == 404
    finally:
        server.terminate()
        server.wait(60)
        log.close()
    assert server.returncode == 0, (tmp_path / "gunicorn.log").read_text()[-3000:]
    assert "Using worker: gthread" in (tmp_path / "gunicorn.log").read_text()


def test_make_run_installs_the_product_and_make_test_adds_the_test_tools(tmp_path):
    """scripts/lib.sh's python_env against a stand-in venv whose python logs each pip call: `make run` (no
    argument) installs the product only, `make test` (dev) the test tools too, each set again only when its files
    change; a clean checkout's `make test` (CI) installs both."""
    import shutil

    def checkout(name):
        root = tmp_path / name
        (root / "scripts").mkdir(parents=True)
        for path in ("scripts/lib.sh", "requirements.txt", "requirements-ml.txt", "requirements-dev.txt"):
            shutil.copy(ROOT / path, root / path)
        venv = tmp_path / f"{name}-venv"
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / name}.pip\n')
        (venv / "bin" / "python").chmod(0o755)
        return root, venv

    def python_env(root, venv, *mode):
        log = root.parent / f"{root.name}.pip"
        before = log.read_text().splitlines() if log.exists() else []
        subprocess.run(["bash", "-c", f'source "{root}/scripts/lib.sh" && python_env {" ".join(mode)}'], check=True,
                       env={"PATH": os.environ["PATH"], "LAYRA_VENV": str(venv)}, capture_output=True)
        after = log.read_text().splitlines() if log.exists() else []
        return [line.split(" -r ")[-1].replace(str(root) + "/", "") if " -r " in line else line
                for line in after[len(before):]]

    product = ["-m pip install -q -U pip wheel", "requirements-ml.txt", "requirements.txt",
               "-m pip install -q --no-deps colpali-engine==0.3.18"]
    root, venv = checkout("dev-machine")
    assert python_env(root, venv) == product  # make run
    assert python_env(root, venv) == []
    assert python_env(root, venv, "dev") == ["requirements-dev.txt"]  # make test
    assert python_env(root, venv, "dev") == [] and python_env(root, venv) == []
    with open(root / "requirements.txt", "a") as f:
        f.write("newpackage==1.0\n")
    assert python_env(root, venv, "dev") == [*product, "requirements-dev.txt"]  # new pins: both again
    with open(root / "requirements-dev.txt", "a") as f:
        f.write("newtool==1.0\n")
    assert python_env(root, venv) == []
    assert python_env(root, venv, "dev") == ["requirements-dev.txt"]
    clean, clean_venv = checkout("ci")
    assert python_env(clean, clean_venv, "dev") == [*product, "requirements-dev.txt"]
    assert "python_env dev" in (ROOT / "scripts" / "test.sh").read_text()
    assert re.search(r"^python_env$", (ROOT / "scripts" / "run.sh").read_text(), re.M)
