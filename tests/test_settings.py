import os
import subprocess
import sys

import yaml

from tests.plugin import ROOT


def _settings_in_clean_env(extra: dict, expr: str) -> str:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env.update(extra)
    code = f"import django, os; os.environ['DJANGO_SETTINGS_MODULE']='layra.settings'; django.setup(); " \
           f"from django.conf import settings as s; print(repr(({expr},)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_defaults_need_nothing_set():
    out = _settings_in_clean_env(
        {}, "s.DATABASES['default']['ENGINE'], s.MILVUS_URI.endswith('milvus.db'), s.CELERY_TASK_ALWAYS_EAGER, "
            "s.STORAGES['default']['BACKEND'], s.EMBEDDER, s.MONGODB_URI"
    )
    assert "sqlite3" in out
    assert "True, True" in out
    assert "FileSystemStorage" in out
    assert "minilm" in out
    assert "retryWrites=false" in out


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
    settings_source = (ROOT / "layra" / "settings.py").read_text() + (ROOT / "gunicorn.conf.py").read_text()
    for name in ("web", "worker", "gpu-worker", "beat"):
        env = services[name].get("environment") or {}
        keys = env if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
        for key in keys:
            assert f'"{key}"' in settings_source, f"{name}: {key} is not read by settings or gunicorn.conf.py"
        for required in ("DATABASE_URL", "MONGODB_URI", "MILVUS_URI", "REDIS_URL", "CELERY_BROKER_URL",
                         "AWS_S3_ENDPOINT_URL", "AWS_STORAGE_BUCKET_NAME", "SECRET_KEY", "EMBEDDER"):
            assert required in keys, f"{name} lacks {required}"
    gpu = services["gpu-worker"]
    assert "-Q gpu" in " ".join(gpu["command"]) if isinstance(gpu["command"], list) else "-Q gpu" in gpu["command"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_the_compose_worker_can_start_the_code_sandbox_as_a_non_root_user():
    """workflows/SANDBOX.md: bwrap needs user namespaces, mount and a fresh /proc, which Docker blocks by default."""
    worker = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["worker"]
    assert worker["user"] not in ("root", "0") and worker["cap_drop"] == ["ALL"]
    assert {"seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined",
            "no-new-privileges:true"} <= set(worker["security_opt"])
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "bubblewrap" in dockerfile and f"--home-dir /home/{worker['user']} {worker['user']}\n" in dockerfile
