"""Start the embedded stack and serve the API: the README's run command ends here.

scripts/run.sh makes the keys first (`python -m layra.keyfiles DATA_DIR`): settings refuse to load without them
when DEBUG is off, which is the default here too. The API is served as in production: gunicorn with
gunicorn.conf.py (gthread workers, so SSE streams each hold a thread, not a process), static files by whitenoise."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from layra import embedded, keyfiles
from layra.redis import redis_client
from operations.indexes import mongo_indexes

DEMO_USERNAME = "demo"
DEMO_PASSWORD_FILE = "demo_password"  # under DATA_DIR/secrets: random on first start, reused after


class Command(BaseCommand):
    help = "Start SecantusDB and Milvus (if not running), migrate, start a worker, serve the API with gunicorn."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-worker", action="store_true", help="run tasks eagerly in the web process")

    def handle(self, *args, host, port, no_worker, **options):
        # SIGTERM (service managers, `timeout`) must run the finally below that stops the children.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        data_dir = Path(settings.DATA_DIR)
        children = []  # stopped in reverse order, whatever step fails or is interrupted
        try:
            self._start_stores(children, data_dir)
            _redis_check()
            call_command("migrate", interactive=False, verbosity=0)
            call_command("collectstatic", interactive=False, verbosity=0)  # whitenoise serves STATIC_ROOT
            mongo_indexes()  # the collections and their indexes before any process writes (Milvus makes its own)
            demo_password = self._ensure_demo_user(data_dir)
            if not no_worker and not settings.CELERY_TASK_ALWAYS_EAGER:
                children.append(self._start_worker(data_dir / "logs"))
            server = subprocess.Popen(gunicorn_argv(host, port), cwd=settings.BASE_DIR, env=dict(os.environ))
            children.append(server)
            _wait_serving(server, host, port)
            self.stdout.write(self.style.SUCCESS(
                f"\nLAYRA is up: http://{host}:{port}/api/v1/health/ready  (docs: http://{host}:{port}/api/docs/)\n"
                f"Demo login: username '{DEMO_USERNAME}', password '{demo_password}' "
                f"(kept in {data_dir / 'secrets' / DEMO_PASSWORD_FILE})\n"
            ))
            returncode = server.wait()
            if returncode:
                raise CommandError(f"gunicorn exited with status {returncode}")
        finally:
            for child in reversed(children):
                _child_stop(child)

    def _start_stores(self, children: list, data_dir: Path) -> None:
        """SecantusDB and Milvus, each unless something already listens on its port. Each is in `children` before
        it starts: a SIGTERM while Milvus takes its minute to start must stop it too."""
        log_dir = data_dir / "logs"
        mongo_port = _port_of(settings.MONGODB_URI, 27018)
        if not embedded.port_open(mongo_port):
            children.append(embedded.secantus(mongo_port, str(data_dir / "mongo"), log_dir))
            children[-1].start()
            self.stdout.write(f"SecantusDB on 127.0.0.1:{mongo_port}")
        if not settings.MILVUS_URI.startswith("http://127.0.0.1:"):
            return
        milvus_port = _port_of(settings.MILVUS_URI, 19530)
        if embedded.port_open(milvus_port):
            return
        if settings.EMBEDDED_MILVUS == "lite":
            children.append(embedded.milvus_lite(milvus_port, data_dir / "milvus", log_dir))
            children[-1].start()
        else:
            children.append(embedded.milvus_standalone(milvus_port, data_dir / "milvus-standalone", log_dir))
            try:
                children[-1].start(timeout=150)
            except RuntimeError:
                # Right after a stop, a 2.3 server has come up with its coordinators still waiting on the last
                # run's sessions in etcd and never served (seen several times); a second start after those have
                # expired did.
                self.stdout.write("Milvus did not become ready; starting it once more")
                children[-1].start(timeout=300)
        self.stdout.write(f"Milvus ({settings.EMBEDDED_MILVUS}) on 127.0.0.1:{milvus_port}")

    def _start_worker(self, log_dir: Path) -> subprocess.Popen:
        worker_log = open(log_dir / "worker.log", "ab")  # noqa: SIM115 - the child keeps writing to it
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "layra", "worker", "-Q", "default,ingest,gpu",
                                   "-c", "2", "-l", "INFO"], env=dict(os.environ), stdout=worker_log,
                                  stderr=subprocess.STDOUT)
        self.stdout.write(f"Celery worker started (log: {log_dir / 'worker.log'})")
        return worker

    def _ensure_demo_user(self, data_dir: Path) -> str:
        """The demo user's password: random on first start, kept in DATA_DIR/secrets (0600). A demo user made by
        an older version (with the password that was in the source) gets the new one."""
        from django.contrib.auth import get_user_model

        path = data_dir / "secrets" / DEMO_PASSWORD_FILE
        fresh = not path.exists()
        if fresh:
            keyfiles.write_private(path, keyfiles.new_password())
        password = path.read_text().strip()
        user_model = get_user_model()
        user = user_model.objects.filter(username=DEMO_USERNAME).first()
        if user is None:
            user_model.objects.create_user(DEMO_USERNAME, f"{DEMO_USERNAME}@example.com", password)
        elif fresh:
            user.set_password(password)
            user.save(update_fields=["password"])
        return password


def _redis_check() -> None:
    try:
        redis_client("cache").ping()
    except Exception as exc:  # noqa: BLE001
        raise CommandError(
            f"Redis is not reachable at {settings.REDIS_URL} ({type(exc).__name__}). Start one with: "
            "redis-server --daemonize yes --port 6379 --save '' --appendonly no"
        ) from exc


def gunicorn_argv(host: str, port: int) -> list[str]:
    """gunicorn as deployed (gunicorn.conf.py: 2 gthread workers x 32 threads unless GUNICORN_* say otherwise, sized
    for a small host), on the address asked for. (A unix socket's path has a limit of about 100 bytes.)"""
    # Its control socket beside the data, not the user's one in ~/.gunicorn: two checkouts may serve at once.
    control = Path(settings.DATA_DIR) / "gunicorn.ctl"
    control_args = ["--control-socket", str(control)] if len(str(control)) < 100 else ["--no-control-socket"]
    return [sys.executable, "-m", "gunicorn", "--config", str(Path(settings.BASE_DIR) / "gunicorn.conf.py"),
            *control_args, "--bind", f"{host}:{port}", "layra.wsgi:application"]


def _wait_serving(server: subprocess.Popen, host: str, port: int, timeout: float = 120) -> None:
    """Until gunicorn listens; an early exit (the port is taken, a bad setting) is an error, not a silent hang."""
    deadline = time.monotonic() + timeout
    while not embedded.port_open(port, host):
        if server.poll() is not None:
            raise CommandError(f"gunicorn exited at start with status {server.returncode} (port {port} in use?)")
        if time.monotonic() > deadline:
            raise CommandError(f"gunicorn did not listen on {host}:{port} within {timeout:.0f} s")
        time.sleep(0.2)


def _port_of(uri: str, default: int) -> int:
    from urllib.parse import urlsplit

    return urlsplit(uri).port or default


def _child_stop(child) -> None:
    """Stop one child, never leaving the next one running: a worker finishing a long task (warm shutdown) and
    gunicorn finishing its open requests (graceful_timeout) get 35 s and are then killed (an unacked task is
    redelivered at the next start)."""
    if not isinstance(child, subprocess.Popen):
        child.stop()
        return
    child.terminate()
    try:
        child.wait(35)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(5)
