"""The API load benchmark by hand, from a clean checkout with nothing set:

    make bench-api ARGS="--clients 50 --seconds 30 --json"
    .venv/bin/python scripts/bench_api.py --clients 50 --seconds 30 --json     (the venv already built)

`manage.py bench_api` measures the product against the stores its settings name, so by itself it needs them
running. This starts a private stack as the test run does (redis-server, SecantusDB in memory, Milvus Lite server,
moto S3, on free loopback ports: nothing shared with `make run` or a test run), migrates a MariaDB database of its
own (BENCH_DATABASE_URL, default mysql://root@127.0.0.1:3306/layra_bench; every login writes a session, and SQLite
would serialise them), runs `manage.py bench_api` with the arguments given, then stops the stack. The report is
bench_api's own output; the exit status is bench_api's. The run directory (gunicorn's log) is kept when it fails.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import environ  # noqa: E402 - after the path: the launcher runs as a plain script
import psutil  # noqa: E402

from layra import embedded, keyfiles  # noqa: E402

DEFAULT_DATABASE_URL = "mysql://root@127.0.0.1:3306/layra_bench"


def ensure_database(url: str) -> None:
    """Create the bench's MySQL/MariaDB database when it is missing (other engines: it must exist)."""
    config = environ.Env.db_url_config(url)
    if not config["ENGINE"].endswith("mysql"):
        return
    import MySQLdb

    connection = MySQLdb.connect(host=config.get("HOST") or "127.0.0.1", port=int(config.get("PORT") or 3306),
                                 user=config.get("USER") or "root", password=config.get("PASSWORD") or "")
    try:
        name = config["NAME"].replace("`", "")
        connection.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
    finally:
        connection.close()


def bench_env(database_url: str) -> dict[str, str]:
    """The settings of the bench's processes besides the stack's stores."""
    return {
        "DJANGO_SETTINGS_MODULE": "layra.settings",
        "DATABASE_URL": database_url,
        # The bench ingests its two-page PDF before the clock starts; no worker is needed for that.
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "DEBUG": "false",
        # Keys of this run only (DEBUG off refuses to start without them).
        "SECRET_KEY": keyfiles.new_secret_key(),
        "FIELD_ENCRYPTION_KEYS": keyfiles.new_field_key(),
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its waited-for children so far."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # leave the with-block below: stop the stack
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    ensure_database(database_url)
    with embedded.private_run("layra-bench-", keep_on_failure=True) as (services, run_dir, stack_env):
        print(f"private stack in {run_dir}", file=sys.stderr)
        env = {**stack_env, **bench_env(database_url)}
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        status = subprocess.run([*manage, "bench_api", *argv], cwd=ROOT, env=env).returncode
        # The stores share the host with the web tier: how much of it each took (bench_api reports the web's own).
        used = {name: round(cpu_seconds(service.process.pid), 2) for name, service in services.items()}
        print(f"stack CPU seconds, whole run with set-up: {json.dumps(used)}", file=sys.stderr)
        if status != 0:
            raise SystemExit(status)  # a failed run keeps its logs (gunicorn's among them)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
