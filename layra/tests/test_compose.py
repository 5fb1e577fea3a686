"""docker-compose.yml, the Dockerfile, .dockerignore and the requirements files, read as Docker would read them
(Docker cannot run here). Each test is one point an operator relies on when running `docker compose up -d`."""

import os
import re
import subprocess
import sys
import tempfile

import pytest
import yaml

from layra import keyfiles
from layra.storage import ensure_bucket
from tests.plugin import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = "\n".join(line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#"))
# Our processes (built from the Dockerfile) and the third-party stores.
APP_SERVICES = ("init", "web", "worker", "gpu-worker", "gpu-query-worker", "beat", "flower")
GPU_SERVICES = ("gpu-worker", "gpu-query-worker")
STORES = ("mysql", "mongo", "redis", "etcd", "minio", "milvus")
SECRETS = ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD", "MONGO_PASSWORD",
           "REDIS_PASSWORD", "MINIO_ROOT_PASSWORD", "FLOWER_PASSWORD")
DEV_TOOLS = ("pytest", "pytest-django", "pytest-timeout", "moto", "schemathesis", "hypothesis", "factory_boy",
             "Faker", "responses", "ruff", "import-linter", "radon", "cfn-lint", "docker", "Flask")


class MissingVariable(Exception):
    pass


def interpolate(value, env: dict):
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR:?error} (refuses unset or empty), $$."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match):
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if op == "?":
            raise MissingVariable(f"{name}: {arg}")
        return arg if op == "-" else ""

    parts = value.split("$$")
    return "$".join(re.sub(r"\$\{(\w+)(?::([?-])([^}]*))?\}", one, part) for part in parts)


def secrets_env() -> dict:
    return {"SECRET_KEY": keyfiles.new_secret_key(), "FIELD_ENCRYPTION_KEYS": keyfiles.new_field_key(),
            **{name: f"{name.lower().replace('_', '')}0123456789abcdef" for name in SECRETS[2:]}}


def service_env(name: str, env: dict) -> dict:
    environment = interpolate(SERVICES[name].get("environment") or {}, env)
    return {k: str(v) for k, v in environment.items()}


def command_text(service: dict) -> str:
    command = service.get("command", "")
    return command if isinstance(command, str) else " ".join(command)


def test_compose_refuses_to_start_without_each_secret():
    """No fallback passwords: `docker compose up` stops on each missing one (the `${VAR:?}` form)."""
    text = (ROOT / "docker-compose.yml").read_text()
    full = secrets_env()
    assert interpolate(COMPOSE, full)
    for name in SECRETS:
        assert f"${{{name}:?" in text and f"${{{name}:-" not in text and f"${{{name}}}" not in text, name
        with pytest.raises(MissingVariable, match=name):
            interpolate(COMPOSE, {k: v for k, v in full.items() if k != name})


def test_the_stores_require_authentication_with_the_secrets():
    env = secrets_env()
    mongo = service_env("mongo", env)
    assert mongo["MONGO_INITDB_ROOT_PASSWORD"] == env["MONGO_PASSWORD"]  # the image turns auth on with a root user
    redis = interpolate(SERVICES["redis"], env)
    assert "--requirepass" in command_text(redis) and service_env("redis", env)["REDIS_PASSWORD"] == env[
        "REDIS_PASSWORD"]
    assert service_env("minio", env)["MINIO_ROOT_PASSWORD"] == env["MINIO_ROOT_PASSWORD"]
    assert service_env("mysql", env)["MYSQL_PASSWORD"] == env["MYSQL_PASSWORD"]
    flower = service_env("flower", env)
    assert flower["FLOWER_BASIC_AUTH"] == f"admin:{env['FLOWER_PASSWORD']}"
    assert SERVICES["flower"]["ports"] == ["127.0.0.1:5555:5555"]
    for name in APP_SERVICES:
        app = service_env(name, env)
        assert f"layra:{env['MONGO_PASSWORD']}@mongo:27017/" in app["MONGODB_URI"] and "authSource=admin" in app[
            "MONGODB_URI"], name
        assert app["REDIS_URL"] == f"redis://:{env['REDIS_PASSWORD']}@redis:6379", name
        assert app["CELERY_BROKER_URL"].startswith(f"redis://:{env['REDIS_PASSWORD']}@redis:6379/"), name
        assert app["AWS_SECRET_ACCESS_KEY"] == env["MINIO_ROOT_PASSWORD"], name
    # Only the proxy and (on loopback) Flower are published; no store is.
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    assert published == {"proxy", "flower"}


def test_a_one_shot_init_makes_the_bucket_migrates_and_makes_the_indexes_before_anything_else():
    init = SERVICES["init"]
    assert init["restart"] == "no"
    command = command_text(init)
    steps = ["ensure_bucket()", "manage.py migrate --noinput", "manage.py ensure_indexes"]
    assert all(step in command for step in steps) and command.count("&&") == 2, command
    assert [command.index(step) for step in steps] == sorted(command.index(step) for step in steps)
    assert init["depends_on"] == {store: {"condition": "service_healthy"} for store in STORES if store != "etcd"}
    for name in APP_SERVICES[1:]:
        assert SERVICES[name]["depends_on"]["init"] == {"condition": "service_completed_successfully"}, name
    assert callable(ensure_bucket)  # the helper it calls (layra.storage)


def test_every_dependency_waits_for_health_and_every_service_restarts():
    for name, service in SERVICES.items():
        for dependency, how in (service.get("depends_on") or {}).items():
            assert isinstance(how, dict), f"{name} -> {dependency}: no condition"
            want = "service_completed_successfully" if dependency == "init" else "service_healthy"
            assert how == {"condition": want}, (name, dependency)
            if dependency != "init":
                assert "test" in SERVICES[dependency].get("healthcheck", {}), f"{dependency} has no healthcheck"
        if name != "init":
            assert service.get("restart") == "unless-stopped", name
    for name in (*STORES, "web", "worker", *GPU_SERVICES, "flower"):
        assert SERVICES[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    assert SERVICES["proxy"]["depends_on"] == {"web": {"condition": "service_healthy"}}


def test_the_web_healthcheck_asks_a_path_the_tls_redirect_leaves_alone(client, settings):
    check = " ".join(SERVICES["web"]["healthcheck"]["test"])
    path = re.search(r"http://localhost:8000(/[\w/]+)", check).group(1)
    settings.SECURE_SSL_REDIRECT = True
    assert client.get(path).status_code == 200  # plain http, no X-Forwarded-Proto: as the healthcheck asks
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    redirected = client.get("/api/v1/auth/me")
    assert redirected.status_code == 301 and redirected["Location"] == "https://testserver/api/v1/auth/me"
    behind_proxy = client.get("/api/v1/auth/me", HTTP_X_FORWARDED_PROTO="https")
    assert behind_proxy.status_code == 401  # through the TLS proxy: served, not redirected


def test_tls_redirect_is_on_only_behind_the_compose_tls_proxy():
    env = secrets_env()
    web = service_env("web", env)
    assert web["SECURE_SSL_REDIRECT"] == "true" and web["NUM_PROXIES"] == "1"
    proxy = interpolate(SERVICES["proxy"], env)
    assert command_text(proxy) == "caddy reverse-proxy --from localhost --to web:8000"
    assert "443:443" in proxy["ports"] and "ports" not in SERVICES["web"]
    # Without a proxy (settings' own default) nothing redirects: an https nobody serves would break every client.
    out = subprocess.run([sys.executable, "-c", "import django; django.setup(); from django.conf import settings as s;"
                          " print(s.SECURE_SSL_REDIRECT, s.SECURE_PROXY_SSL_HEADER)"],
                         cwd=ROOT, env=_clean_env(env), capture_output=True, text=True)
    assert out.stdout.strip() == "False ('HTTP_X_FORWARDED_PROTO', 'https')", out.stderr[-2000:]


def _clean_env(env: dict, extra: dict | None = None) -> dict:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return {**base, "DJANGO_SETTINGS_MODULE": "layra.settings", "DATA_DIR": tempfile.mkdtemp(prefix="layra-compose-"),
            "SECRET_KEY": env["SECRET_KEY"], "FIELD_ENCRYPTION_KEYS": env["FIELD_ENCRYPTION_KEYS"], **(extra or {})}


def test_check_deploy_is_clean_with_the_compose_web_environment():
    env = secrets_env()
    out = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                         env=_clean_env(env, service_env("web", env)), capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "System check identified no issues (0 silenced)." in out.stdout


def test_web_sends_queries_to_the_gpu_worker_and_never_loads_colqwen():
    env = secrets_env()
    web = service_env("web", env)
    assert web["EMBEDDER"] == "colqwen" and web["QUERY_EMBED_REMOTE"] == "true"
    assert web["GUNICORN_PRELOAD_EMBEDDER"] == "false"
    code = ("import django; django.setup(); import sys; from embeddings.query import query_embed_remote; "
            "from operations.warmup import _query_embedder; print(query_embed_remote(), _query_embedder(), "
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_clean_env(env, web), capture_output=True,
                         text=True)
    # Remote, the warm-up's embedder step does not load a model (not even torch) in the web process.
    assert out.returncode == 0 and out.stdout.split() == ["True", "remote", "False"], out.stdout + out.stderr[-2000:]
    for name in GPU_SERVICES:
        assert service_env(name, env)["WORKER_PRELOAD_EMBEDDER"] == "true"
        assert "gpu_query" in command_text(SERVICES[name])


def test_a_cuda_image_for_the_gpu_workers_and_a_cpu_image_for_the_rest():
    env = secrets_env()
    stages = re.findall(r"^FROM \S+ AS (\S+)$", DOCKERFILE, re.M)
    assert {"cpu", "gpu", "venv-cpu", "venv-gpu"} <= set(stages)
    assert stages[-1] == "cpu", "a plain `docker build .` makes the CPU image"
    venv_cpu = DOCKERFILE.split("AS venv-cpu")[1].split("\nFROM ")[0]
    venv_gpu = DOCKERFILE.split("AS venv-gpu")[1].split("\nFROM ")[0]
    assert "--index-url https://download.pytorch.org/whl/cpu -r requirements-ml.txt" in venv_cpu
    assert "ARG TORCH_CUDA_INDEX=https://download.pytorch.org/whl/cu" in venv_gpu
    assert "--index-url ${TORCH_CUDA_INDEX} -r requirements-ml.txt" in venv_gpu
    assert "COPY --from=venv-gpu /opt/venv" in DOCKERFILE.split("AS gpu\n")[1].split("\nFROM ")[0]
    assert "COPY --from=venv-cpu /opt/venv" in DOCKERFILE.split("AS cpu\n")[1]
    for name in APP_SERVICES:
        service = interpolate(SERVICES[name], env)
        gpu = name in GPU_SERVICES
        assert service["build"]["target"] == ("gpu" if gpu else "cpu"), name
        assert service["image"] == ("layra-django:gpu" if gpu else "layra-django:cpu"), name
        devices = (service.get("deploy") or {}).get("resources", {}).get("reservations", {}).get("devices", [])
        assert bool(devices) == gpu and all(d["capabilities"] == ["gpu"] for d in devices), name
        if gpu:
            assert re.fullmatch(r"https://download\.pytorch\.org/whl/cu\d+", service["build"]["args"][
                "TORCH_CUDA_INDEX"])


def test_our_processes_run_as_an_unprivileged_user():
    for name in APP_SERVICES:
        service = SERVICES[name]
        assert service["user"] == "layra" and service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
    assert "--uid 10001" in DOCKERFILE and "--home-dir /home/layra layra" in DOCKERFILE
    for stage in ("gpu", "cpu"):
        body = DOCKERFILE.split(f"AS {stage}\n")[1].split("\nFROM ")[0]
        assert "\nUSER layra\n" in body, stage


def test_the_production_image_has_no_test_tools_and_serves_its_static_files():
    product = (ROOT / "requirements.txt").read_text().lower()
    dev = (ROOT / "requirements-dev.txt").read_text()
    pinned = {line.split("==")[0].lower() for line in product.splitlines() if "==" in line}
    for tool in DEV_TOOLS:
        assert tool.lower() not in pinned, f"{tool} is in requirements.txt"
        assert re.search(rf"^{re.escape(tool)}==", dev, re.M | re.I), f"{tool} is not pinned in requirements-dev.txt"
    dev_pins = {line.split("==")[0].lower() for line in dev.splitlines() if "==" in line}
    assert not dev_pins & pinned and dev.splitlines()[4] == "-c requirements.txt"
    assert {"gunicorn", "whitenoise", "django", "celery"} <= pinned
    assert "requirements-dev" not in INSTRUCTIONS and "pytest" not in INSTRUCTIONS
    # build tools stay in the build stage
    runtime = DOCKERFILE.split("AS runtime\n")[1].split("\nFROM ")[0]
    assert "build-essential" not in runtime and "libmariadb-dev" not in runtime
    cpu = DOCKERFILE.split("AS cpu\n")[1]
    assert "python manage.py collectstatic --noinput" in cpu and "STATIC_ROOT=/app/staticfiles" in DOCKERFILE
    assert "rm -rf /tmp/build" in cpu  # the throwaway keys do not stay in the image


def test_the_build_context_leaves_out_the_venv_data_git_and_node_modules():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".venv", "data", ".git", "node_modules", "**/node_modules", ".env", "models"} <= ignored


def test_gunicorn_serves_with_threads_so_sse_streams_do_not_hold_a_process():
    import runpy

    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["worker_class"] == "gthread" and config["threads"] >= 8 and config["workers"] >= 2
    assert config["timeout"] >= 300  # an answer streams for minutes
    assert "gunicorn.conf.py" in command_text(SERVICES["web"])
    assert '"--config", "gunicorn.conf.py"' in DOCKERFILE
