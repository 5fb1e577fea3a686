"""Pytest plugin: start the real services before Django reads its settings.

MariaDB is the shared server (scripts/test.sh starts it); each test run gets its own
test database name per checkout plus a private redis-server, SecantusDB, Milvus Lite
server and moto S3 on free loopback ports, so parallel runs never share state.
"""

import atexit
import hashlib
import os
import tempfile
from pathlib import Path

import pytest

from layra import embedded

ROOT = Path(__file__).resolve().parent.parent
SERVICES: dict[str, embedded.ServiceProcess] = {}


def _start_services() -> None:
    run_dir = Path(tempfile.mkdtemp(prefix="layra-test-"))
    os.environ["LAYRA_TEST_RUN_DIR"] = str(run_dir)
    services, stack_env = embedded.private_stack(run_dir)
    SERVICES.update(services)
    atexit.register(_stop_services)

    checkout = hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]
    mysql = os.environ.get("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
    os.environ.update({
        **stack_env,
        "DJANGO_SETTINGS_MODULE": "layra.settings",
        "DATABASE_URL": mysql,
        "TEST_DATABASE_NAME": f"test_layra_{checkout}",
        "MONGODB_URI": f"mongodb://127.0.0.1:{SERVICES['mongo'].port}/layra_test?retryWrites=false",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "AWS_STORAGE_BUCKET_NAME": "layra-test",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    })


def _stop_services() -> None:
    for service in SERVICES.values():
        service.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    if not SERVICES:
        _start_services()
