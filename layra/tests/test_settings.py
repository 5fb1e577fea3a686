import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from layra import keyfiles
from tests.plugin import ROOT

# A key that an earlier version of this project had as its literal default (known by its hash, see keyfiles).
OLD_DEFAULT_KEY = "dev-insecure-change-me-" + "0123456789abcdefghijklmnopqrstuvwxyz"


def _clean_env(extra: dict) -> dict:
    """PATH, HOME and LANG only, plus `extra`; DATA_DIR an empty directory unless given (no key files there)."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env["DATA_DIR"] = tempfile.mkdtemp(prefix="layra-settings-")
    env.update(extra)
    return env


def _keys() -> dict:
    return {"SECRET_KEY": keyfiles.new_secret_key(), "FIELD_ENCRYPTION_KEYS": keyfiles.new_field_key()}


def _setup(extra: dict, expr: str = "None") -> subprocess.CompletedProcess:
    code = f"import django, os; os.environ['DJANGO_SETTINGS_MODULE']='layra.settings'; django.setup(); " \
           f"from django.conf import settings as s; print(repr(({expr},)))"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_clean_env(extra), capture_output=True,
                          text=True)


def _settings_in_clean_env(extra: dict, expr: str) -> str:
    out = _setup(extra, expr)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_defaults_need_nothing_set_but_the_keys():
    out = _settings_in_clean_env(
        _keys(), "s.DATABASES['default']['ENGINE'], s.MILVUS_URI.endswith('milvus.db'), s.CELERY_TASK_ALWAYS_EAGER, "
                 "s.STORAGES['default']['BACKEND'], s.EMBEDDER, s.MONGODB_URI, s.DEBUG, s.MODEL_ENDPOINT_ALLOWLIST"
    )
    assert "sqlite3" in out
    assert "True, True" in out
    assert "FileSystemStorage" in out
    assert "minilm" in out
    assert "retryWrites=false" in out
    assert out.endswith("False, [])"), "DEBUG is off and no endpoint is allowlisted by default"


def _refused(extra: dict, *fragments: str) -> None:
    for command in ([sys.executable, "-c", "import django, os; os.environ['DJANGO_SETTINGS_MODULE']="
                                           "'layra.settings'; django.setup()"],
                    [sys.executable, "manage.py", "check"]):
        out = subprocess.run(command, cwd=ROOT, env=_clean_env(extra), capture_output=True, text=True)
        assert out.returncode != 0, command
        assert "ImproperlyConfigured: Refusing to start with DEBUG off" in out.stderr, out.stderr[-2000:]
        for fragment in fragments:
            assert fragment in out.stderr, out.stderr[-2000:]


def test_debug_off_refuses_to_start_without_keys():
    _refused({}, "SECRET_KEY is not set", "FIELD_ENCRYPTION_KEYS is not set")
    _refused({"FIELD_ENCRYPTION_KEYS": keyfiles.new_field_key()}, "SECRET_KEY is not set")
    _refused({"SECRET_KEY": keyfiles.new_secret_key()}, "FIELD_ENCRYPTION_KEYS is not set")
    _refused({"DEBUG": "false", "SECRET_KEY": keyfiles.new_secret_key()}, "FIELD_ENCRYPTION_KEYS is not set")


def test_debug_off_refuses_a_known_or_weak_key():
    assert keyfiles.key_sha256(OLD_DEFAULT_KEY) in keyfiles.KNOWN_KEY_SHA256
    fernet = keyfiles.new_field_key()
    _refused({"SECRET_KEY": OLD_DEFAULT_KEY, "FIELD_ENCRYPTION_KEYS": fernet}, "SECRET_KEY is a published default")
    _refused({"SECRET_KEY": "django-insecure-" + keyfiles.new_secret_key(), "FIELD_ENCRYPTION_KEYS": fernet},
             "SECRET_KEY starts with 'django-insecure-'")
    _refused({"SECRET_KEY": "short-key", "FIELD_ENCRYPTION_KEYS": fernet}, "SECRET_KEY is too weak")
    _refused({"SECRET_KEY": "ab" * 40, "FIELD_ENCRYPTION_KEYS": fernet}, "SECRET_KEY is too weak")
    _refused({**_keys(), "JWT_SIGNING_KEY": OLD_DEFAULT_KEY}, "JWT_SIGNING_KEY is a published default")


def test_an_invalid_field_encryption_key_is_refused_even_with_debug():
    for debug in ("false", "true"):
        out = _setup({"DEBUG": debug, "SECRET_KEY": keyfiles.new_secret_key(),
                      "FIELD_ENCRYPTION_KEYS": f"{keyfiles.new_field_key()},not-a-fernet-key"})
        assert out.returncode != 0 and "key 2 is not a Fernet key" in out.stderr, out.stderr[-2000:]


def test_debug_without_keys_starts_on_random_ones_and_says_so():
    out = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=_clean_env({"DEBUG": "true"}),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "layra.W001" in out.stderr + out.stdout


def test_keys_are_made_once_private_and_read_from_the_data_dir():
    data_dir = Path(tempfile.mkdtemp(prefix="layra-keys-"))
    for _ in range(2):  # `make run` twice: made on the first start, kept on the second
        subprocess.run([sys.executable, "-m", "layra.keyfiles", str(data_dir)], cwd=ROOT, check=True,
                       capture_output=True)
        if _ == 0:
            first = {p.name: p.read_text() for p in (data_dir / "secrets").iterdir()}
    files = {p.name: p for p in (data_dir / "secrets").iterdir()}
    assert set(files) == {"secret_key", "field_encryption_keys"}
    assert {name: path.read_text() for name, path in files.items()} == first
    assert stat.S_IMODE((data_dir / "secrets").stat().st_mode) == 0o700
    for path in files.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret, fernet = files["secret_key"].read_text().strip(), files["field_encryption_keys"].read_text().strip()
    assert keyfiles.secret_key_problem(secret) is None
    out = _settings_in_clean_env({"DATA_DIR": str(data_dir)}, "s.SECRET_KEY, s.FIELD_ENCRYPTION_KEYS, s.DEBUG")
    assert out == repr((secret, [fernet], False))
    # A *_FILE variable names another file; the variable itself wins over both.
    other = data_dir / "elsewhere"
    other.write_text(keyfiles.new_secret_key())
    out = _settings_in_clean_env({"DATA_DIR": str(data_dir), "SECRET_KEY_FILE": str(other)}, "s.SECRET_KEY")
    assert out == repr((other.read_text(),))
    given = keyfiles.new_secret_key()
    out = _settings_in_clean_env({"DATA_DIR": str(data_dir), "SECRET_KEY": given}, "s.SECRET_KEY")
    assert out == repr((given,))


def test_no_secret_literal_in_the_source():
    """No key, password or Fernet key has a default in what is deployed (tests may build their own)."""
    import re

    fernet = re.compile(r"['\"][A-Za-z0-9_-]{43}=['\"]")
    sources = [p for p in ROOT.rglob("*") if p.is_file() and p.suffix in (".py", ".sh", ".yml", ".yaml", ".toml")
               and not {".venv", "data", "tests", ".git", "node_modules"} & set(p.relative_to(ROOT).parts)
               and "/tests/" not in str(p.relative_to(ROOT))] + [ROOT / "Dockerfile"]
    assert len(sources) > 50
    for path in sources:
        text = path.read_text(errors="replace")
        assert OLD_DEFAULT_KEY not in text and "dev-insecure" not in text, path
        assert not fernet.search(text), path
        assert not re.search(r"SECRET_KEY\s*=\s*env\.\w+\([^)]*default=", text), path
    compose = (ROOT / "docker-compose.yml").read_text()
    for name in re.findall(r"\$\{(\w*(?:PASSWORD|SECRET|KEY)\w*)", compose):
        assert re.search(r"\$\{" + name + r":\?", compose) and not re.search(r"\$\{" + name + ":-", compose), \
            f"docker-compose.yml gives {name} a default"


def test_urls_choose_the_stores():
    out = _settings_in_clean_env(
        {
            "DATABASE_URL": "mysql://u:p@db.example:3306/layra",
            "MILVUS_URI": "http://milvus:19530",
            "REDIS_URL": "redis://cache:6379",
            "CELERY_BROKER_URL": "redis://cache:6379/9",
            "AWS_STORAGE_BUCKET_NAME": "bucket",
            "AWS_S3_ENDPOINT_URL": "http://minio:9000",
            "EMBEDDER": "colqwen",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "a.example,b.example",
            **_keys(),
        },
        "s.DATABASES['default']['ENGINE'], s.DATABASES['default']['HOST'], s.MILVUS_URI, s.CELERY_BROKER_URL, "
        "s.CELERY_TASK_ALWAYS_EAGER, s.STORAGES['default']['BACKEND'], s.EMBEDDER, s.DEBUG, s.ALLOWED_HOSTS",
    )
    assert "django.db.backends.mysql" in out and "db.example" in out
    assert "http://milvus:19530" in out and "redis://cache:6379/9" in out
    assert "False, 'storages.backends.s3.S3Storage', 'colqwen', False, ['a.example', 'b.example']" in out


def test_compose_has_every_service_and_env_name_the_settings_read():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("mysql", "mongo", "redis", "milvus", "etcd", "minio", "web", "worker", "gpu-worker", "beat",
                 "flower"):
        assert name in services, name
    # gunicorn.conf.py reads the web server's own variables (GUNICORN_*)
    sources = [*sorted((ROOT / "layra" / "settings").glob("*.py")), ROOT / "gunicorn.conf.py"]
    settings_source = "".join(p.read_text() for p in sources)
    for name in ("web", "worker", "gpu-worker", "beat"):
        env = services[name].get("environment") or {}
        keys = env if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
        for key in keys:
            assert f'"{key}"' in settings_source, f"{name}: {key} is not read by settings or gunicorn.conf.py"
        for required in ("DATABASE_URL", "MONGODB_URI", "MILVUS_URI", "REDIS_URL", "CELERY_BROKER_URL",
                         "AWS_S3_ENDPOINT_URL", "AWS_STORAGE_BUCKET_NAME", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS",
                         "EMBEDDER"):
            assert required in keys, f"{name} lacks {required}"
    gpu = services["gpu-worker"]
    assert "-Q gpu" in " ".join(gpu["command"]) if isinstance(gpu["command"], list) else "-Q gpu" in gpu["command"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_an_allowlist_entry_that_is_neither_url_nor_network_is_refused():
    for name, value, fragment in (("MODEL_ENDPOINT_ALLOWLIST", "http://127.0.0.1:11434/v1,ollama", "'ollama'"),
                                  ("MODEL_ENDPOINT_ALLOWLIST", "ftp://10.0.0.1/", "not an http(s) URL"),
                                  ("METRICS_ALLOWED_NETWORKS", "10.0.0.0/8,prometheus", "prometheus")):
        out = _setup({**_keys(), name: value})
        assert out.returncode != 0 and f"ImproperlyConfigured: {name}" in out.stderr and fragment in out.stderr, \
            out.stderr[-2000:]
    out = _settings_in_clean_env({**_keys(), "MODEL_ENDPOINT_ALLOWLIST": "http://ollama:11434/v1,10.0.0.0/24"},
                                 "s.MODEL_ENDPOINT_ALLOWLIST")
    assert out == repr((["http://ollama:11434/v1", "10.0.0.0/24"],))


def test_the_compose_worker_can_start_the_code_sandbox_as_a_non_root_user():
    """workflows/SANDBOX.md: bwrap needs user namespaces, mount and a fresh /proc, which Docker blocks by default."""
    worker = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["worker"]
    assert worker["user"] not in ("root", "0") and worker["cap_drop"] == ["ALL"]
    assert {"seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined",
            "no-new-privileges:true"} <= set(worker["security_opt"])
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "bubblewrap" in dockerfile and f"--home-dir /home/{worker['user']} {worker['user']}\n" in dockerfile


def test_app_settings_extend_the_core_ones(settings):
    # layra/settings/__init__.py reads core.py, then apps.py, which extends core's schedule, routes and middleware.
    assert {"workflows-runs-check-stuck", "operations.nightly_cleanup", "operations.stuck_jobs"} <= set(
        settings.CELERY_BEAT_SCHEDULE)
    assert settings.CELERY_TASK_ROUTES["embeddings.embed_query"] == {"queue": "gpu_query"}
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] == ["accounts.throttling.UserRateThrottle"]
