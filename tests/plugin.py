"""Pytest plugin: start the real services before Django reads its settings.

MariaDB is the shared server (scripts/test.sh starts it); each test run gets its own
test database name per checkout plus a private redis-server, SecantusDB, Milvus Lite
server and moto S3 on free loopback ports, so parallel runs never share state.
"""

import atexit
import hashlib
import os
import random
import socket
import tempfile
from pathlib import Path

import pytest

from layra import embedded, keyfiles

ROOT = Path(__file__).resolve().parent.parent
SERVICES: dict[str, embedded.ServiceProcess] = {}


def _reserved_port() -> int:
    """A free loopback port below the kernel's ephemeral range: no outgoing connection is given it meanwhile, so
    the fake LLM can listen on it again and again during the run (its URL is allowlisted by exact value)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(10000, max(10001, low))
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free loopback port for the fake LLM")


def _start_services() -> None:
    run_dir = Path(tempfile.mkdtemp(prefix="layra-test-"))
    os.environ["LAYRA_TEST_RUN_DIR"] = str(run_dir)
    services, stack_env = embedded.private_stack(run_dir)
    SERVICES.update(services)
    atexit.register(_stop_services)

    # The fake LLM (tests/fake_llm.py) listens on one reserved port; a second one stays closed (refused_url). Only
    # these two exact URLs are allowed on loopback; nothing allows loopback in general.
    llm_port, refused_port = _reserved_port(), _reserved_port()
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
        # Random keys for this run (DEBUG off refuses to start without them).
        "SECRET_KEY": keyfiles.new_secret_key(),
        "FIELD_ENCRYPTION_KEYS": keyfiles.new_field_key(),
        "LAYRA_TEST_FAKE_LLM_PORT": str(llm_port),
        "LAYRA_TEST_REFUSED_LLM_PORT": str(refused_port),
        "MODEL_ENDPOINT_ALLOWLIST": f"http://127.0.0.1:{llm_port}/v1,http://127.0.0.1:{refused_port}/v1",
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
