"""Load benchmark of the API as a client sees it: gunicorn on loopback, N client threads, one JSON report.

    python manage.py bench_api --clients 50 --seconds 30 --json     (against the stores the settings name)
    make bench-api ARGS="--clients 50 --seconds 30 --json"           (on a private stack: scripts/bench_api.py)

Starts gunicorn with the current settings (rate limits off for the run) on a free loopback port, sets up
a bench user with a knowledge base holding an ingested two-page PDF and a model config pointing at a local
fake OpenAI-compatible LLM (its own process; --llm-latency-ms makes each answer take as long as a real
model's), then runs client threads (one kept-alive connection each) round-robin over list KBs, list files,
search and a chat turn (?stream=false), signing in again every --login-every requests as people start new
sessions (0 puts login in the round-robin: a password check every fifth request), each pausing --think-ms on
average between requests as people do (0 makes it a closed loop that saturates the host). Prints
p50/p95/count/errors per operation as the client saw them and as the server timed them (Server-Timing), the
overall error rate, requests per second, the web tier's CPU per request and the host's speed before and
after. Target: list/read p95 <= 50 ms, error rate 0.
"""

import http.client
import json
import os
import runpy
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import Resolver404, resolve

from layra import embedded

BENCH_USERNAME = "bench"
OPERATIONS = ("login", "list_kbs", "list_files", "search", "chat")
LIST_READ_OPS = ("list_kbs", "list_files")
P95_TARGET_MS = 50


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 2)


def _server_timing_ms(header: str) -> float | None:
    """The `app` duration of a Server-Timing header (`app;dur=12.3`), or None."""
    for metric in header.split(","):
        name, _, params = metric.strip().partition(";")
        if name == "app":
            for param in params.split(";"):
                key, _, value = param.strip().partition("=")
                if key == "dur":
                    try:
                        return float(value)
                    except ValueError:
                        return None
    return None


def database_url() -> str:
    """The URL of the database this process really uses (the test database under pytest)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    scheme = {"django.db.backends.mysql": "mysql", "django.db.backends.postgresql": "postgres"}[db["ENGINE"]]
    auth = db.get("USER") or ""
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    host = f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or ''}".rstrip(":")
    return f"{scheme}://{auth}@{host}/{db['NAME']}" if auth else f"{scheme}://{host}/{db['NAME']}"


def server_env(**extra) -> dict:
    """Environment for a web process that sees exactly the stores this process sees."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "layra.settings", "DATABASE_URL": database_url(),
           "MONGODB_URI": settings.MONGODB_URI, "MILVUS_URI": settings.MILVUS_URI, "REDIS_URL": settings.REDIS_URL,
           "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
           "CELERY_TASK_ALWAYS_EAGER": str(settings.CELERY_TASK_ALWAYS_EAGER).lower(),
           "DATA_DIR": str(settings.DATA_DIR), "DEBUG": str(settings.DEBUG).lower(),
           # The keys this process uses (they may come from DATA_DIR/secrets, or be DEBUG's random ones).
           "SECRET_KEY": settings.SECRET_KEY, "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
           "SECURE_SSL_REDIRECT": "false", "RATE_LIMIT_ENABLED": "false", "PYTHONUNBUFFERED": "1"}
    if settings.AWS_STORAGE_BUCKET_NAME:
        env.update({"AWS_STORAGE_BUCKET_NAME": settings.AWS_STORAGE_BUCKET_NAME,
                    "AWS_S3_ENDPOINT_URL": settings.AWS_S3_ENDPOINT_URL or "",
                    "AWS_ACCESS_KEY_ID": settings.AWS_ACCESS_KEY_ID,
                    "AWS_SECRET_ACCESS_KEY": settings.AWS_SECRET_ACCESS_KEY})
    env.update(extra)
    return env


class Gunicorn:
    def __init__(self, *, workers: int, threads: int, log_path: Path):
        self.port = embedded.free_port()
        self.log_path = log_path
        self.args = [sys.executable, "-m", "gunicorn", "layra.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                     "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
                     "--timeout", "120", "--graceful-timeout", "5", "--log-level", "warning"]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict, timeout: float = 90) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(self.args, cwd=settings.BASE_DIR, env=env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise CommandError(f"gunicorn exited at start; see {self.log_path}")
            try:
                with BenchHttp(self.url, timeout=2) as probe:
                    if probe.get("/api/v1/health/live/").status_code == 200:
                        return
            except (OSError, http.client.HTTPException):  # not listening (or answering) yet
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise CommandError(f"gunicorn did not answer in {timeout}s; see {self.log_path}")
            time.sleep(0.2)

    def stop(self) -> None:
        embedded.process_group_stop(self.process)


class Reply:
    def __init__(self, status_code: int, headers, content: bytes):  # headers: case-insensitive .get()
        self.status_code, self.headers, self.content = status_code, headers, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)


class BenchHttp:
    """One keep-alive HTTP/1.1 connection of one client thread, on the standard library's http.client.

    The load generator shares this host with the server it measures: httpx took about 1.7 ms of CPU per request
    here, http.client a fraction of it, which is left to the server."""

    RETRYABLE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)

    def __init__(self, base_url: str, timeout: float = 60):
        parts = urlsplit(base_url)
        self.host, self.port, self.timeout = parts.hostname, parts.port, timeout
        self.connection: http.client.HTTPConnection | None = None

    def __enter__(self) -> "BenchHttp":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def get(self, path: str, *, headers: dict | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, *, json: dict | None = None, headers: dict | None = None) -> Reply:  # noqa: A002
        return self.request("POST", path, body=json, headers=headers)

    def request(self, method: str, path: str, *, body: dict | None = None, headers: dict | None = None) -> Reply:
        headers = dict(headers or {})
        payload = None
        if body is not None:
            payload = _dumps(body).encode()
            headers["Content-Type"] = "application/json"
        reused = self.connection is not None
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.connection.request(method, path, body=payload, headers=headers)
            response = self.connection.getresponse()
            content = response.read()
        except self.RETRYABLE:
            self.close()
            if not reused:
                raise
            # The server closed the idle kept-alive connection before reading the request: send it again.
            return self.request(method, path, body=body, headers=headers)
        except BaseException:
            self.close()
            raise
        if response.will_close:
            self.close()
        return Reply(response.status, response.msg, content)


def _route_exists(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


class Recorder:
    def __init__(self, operations):
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = {op: [] for op in operations}
        self.server_ms: dict[str, list[float]] = {op: [] for op in operations}
        self.errors: dict[str, int] = dict.fromkeys(operations, 0)
        self.samples: list[str] = []

    def record(self, op: str, ms: float, error: str | None, server_ms: float | None = None) -> None:
        with self.lock:
            self.latencies[op].append(ms)
            if server_ms is not None:
                self.server_ms[op].append(server_ms)
            if error:
                self.errors[op] += 1
                if len(self.samples) < 10:
                    self.samples.append(f"{op}: {error}")


def _prepare_stores() -> None:
    """The deploy steps a bench against fresh stores needs (the bucket, Mongo's collections and indexes), after
    checking that every store the settings name answers: a clear message when one does not, not a traceback."""
    from layra.health import readiness
    from layra.storage import ensure_bucket
    from operations.indexes import mongo_indexes

    try:
        ensure_bucket()  # a fresh S3 (moto, MinIO's first start) has none
    except Exception:  # noqa: BLE001 - S3 down: the readiness check below names it
        pass
    ready, results = readiness()
    if not ready:
        down = ", ".join(f"{name} ({result['error']})" for name, result in results.items() if result["status"] != "ok")
        raise CommandError(f"bench_api measures the running stores its settings name, and these do not answer: {down}. "
                           'To run it on a private stack started for the run: make bench-api ARGS="--clients 50 '
                           '--seconds 30 --json" (scripts/bench_api.py).')
    mongo_indexes()


class Command(BaseCommand):
    help = "Load-test the API through gunicorn with N client threads; print p50/p95/errors per operation."

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=50)
        parser.add_argument("--seconds", type=float, default=30)
        parser.add_argument("--workers", type=int, default=None,
                            help="gunicorn workers (default: gunicorn.conf.py's, as deployed)")
        parser.add_argument("--threads", type=int, default=None,
                            help="gunicorn threads per worker (default: gunicorn.conf.py's)")
        parser.add_argument("--llm-latency-ms", type=float, default=0,
                            help="time the fake model takes to start each answer; a real one takes seconds, "
                                 "holding a web thread all along")
        parser.add_argument("--think-ms", type=float, default=500,
                            help="mean pause of a client between requests (uniform 0.5x-1.5x), as a person "
                                 "reading a page; 0 sends the next request at once (a closed loop)")
        parser.add_argument("--login-every", type=int, default=20,
                            help="a client signs in again (a new session) every N requests; the others go "
                                 "round-robin over the remaining operations. 0: login takes its turn in the "
                                 "round-robin like the others (every fifth request a password check)")
        parser.add_argument("--operations", default=",".join(OPERATIONS),
                            help=f"comma-separated subset of {','.join(OPERATIONS)} to run (default: all)")
        parser.add_argument("--json", action="store_true", help="print only the JSON report")

    def handle(self, *args, clients, seconds, workers, threads, think_ms, llm_latency_ms, operations: str,
               login_every: int, json: bool, **options):
        chosen = [op.strip() for op in operations.split(",") if op.strip()]
        unknown = sorted(set(chosen) - set(OPERATIONS))
        if unknown or not chosen:
            raise CommandError(f"--operations takes a subset of {','.join(OPERATIONS)}; got {operations!r}")
        _prepare_stores()
        from tests.fake_llm import FakeLLMProcess

        deployed = runpy.run_path(str(Path(settings.BASE_DIR) / "gunicorn.conf.py"))
        workers = workers or deployed["workers"]
        threads = threads or deployed["threads"]
        quiet = json
        if not quiet:
            self.stdout.write("setting up bench data ...")
        llm = FakeLLMProcess(reply="Bench answer with a page citation.", latency_ms=llm_latency_ms)
        log_dir = Path(settings.DATA_DIR) / "logs"
        server = Gunicorn(workers=workers, threads=threads, log_path=log_dir / "bench_api_gunicorn.log")
        try:
            password = secrets.token_urlsafe(16)
            # The fake model runs on loopback: allow exactly its URL, here (the set-up saves the model) and in
            # the server.
            allowlist = [*settings.MODEL_ENDPOINT_ALLOWLIST, llm.url]
            settings.MODEL_ENDPOINT_ALLOWLIST = allowlist
            data = self._setup(password=password, llm_url=llm.url)
            server.start(server_env(MODEL_ENDPOINT_ALLOWLIST=",".join(allowlist)))
            speed_before = host_speed_ms()
            if not quiet:
                self.stdout.write(f"gunicorn on {server.url}: {workers} workers x {threads} threads; "
                                  f"{clients} clients for {seconds}s ...")
            report = self._run(server.url, data, password=password, clients=clients, seconds=seconds,
                               think_ms=think_ms, operations=chosen, server_pid=server.process.pid,
                               login_every=login_every)
            report.update({"workers": workers, "threads": threads, "llm_latency_ms": llm_latency_ms,
                           "llm_requests": llm.count,
                           "host_speed_hash_ms": {"before": speed_before, "after": host_speed_ms()}})
        finally:
            server.stop()
            llm.close()
        self.stdout.write(_dumps(report))

    def _setup(self, *, password: str, llm_url: str) -> dict:
        from django.contrib.auth import get_user_model

        from chat.services import model_create
        from knowledge import samples
        from knowledge.documents import File
        from knowledge.services import files_upload, knowledge_base_create
        from layra.celery import app
        from tests.knowledge_helpers import uploaded

        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(username=BENCH_USERNAME,
                                                   defaults={"email": f"{BENCH_USERNAME}@example.com"})
        user.set_password(password)
        user.is_active = True
        user.save()
        kb = knowledge_base_create(user=user, name=f"bench {int(time.time())}")
        eager = app.conf.task_always_eager
        app.conf.task_always_eager = True  # ingest the sample here, whatever runs the queues
        try:
            pdf = samples.make_pdf(["Quarterly revenue grew in the spice trade of Zanzibar",
                                    "Cloves and nutmeg shipments by season"])
            file = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                                uploaded_files=[uploaded("bench.pdf", pdf, "application/pdf")])[0]
        finally:
            app.conf.task_always_eager = eager
        file = File.objects(file_id=file.file_id).first()
        if file is None or file.status != "completed":
            raise CommandError(f"the bench PDF was not ingested: {getattr(file, 'status', None)} "
                               f"{getattr(file, 'error', '')}")
        model = model_create(user=user, model_name="bench-model", model_url=llm_url, api_key="sk-bench", select=True,
                             base_used=[kb.knowledge_base_id])
        return {"knowledge_base_id": kb.knowledge_base_id, "file_id": file.file_id, "model_id": model.model_id}

    def _run(self, base_url: str, data: dict, *, password: str, clients: int, seconds: float,
             think_ms: float = 0, operations=OPERATIONS, server_pid: int | None = None,
             login_every: int = 0) -> dict:
        import random

        kb_id = data["knowledge_base_id"]
        operations = [op for op in OPERATIONS if op in operations]
        skipped = {}
        if "search" in operations and not _route_exists("/api/v1/search/"):
            operations.remove("search")
            skipped["search"] = "route /api/v1/search/ is not in this build"
        recorder = Recorder(operations)
        # The clock starts when every client has logged in and made its conversation.
        cpu = CpuMeter(server_pid)
        started = threading.Barrier(clients + 1, action=lambda: (cpu.start(),
                                                                 clock.update(stop_at=time.monotonic() + seconds)))
        clock = {"stop_at": 0.0}

        def login(http: BenchHttp) -> Reply:
            return http.post("/api/v1/auth/login/", json={"username": BENCH_USERNAME, "password": password})

        def client_loop(index: int) -> None:
            with BenchHttp(base_url) as http:
                token = None
                for attempt in range(5):  # setup, not measured: a failed first login would fail every later call
                    try:
                        response = login(http)
                        token = response.json()["access"]
                        break
                    except Exception as exc:  # noqa: BLE001 - counted once, below
                        error = f"initial login: {exc!r}"
                        time.sleep(0.2 * (attempt + 1))
                if token is None:
                    recorder.record("login", 0.0, error)
                headers = {"Authorization": f"Bearer {token}"}
                conversation_id = None
                try:
                    created = http.post("/api/v1/conversations/", json={"conversation_name": f"bench {index}"},
                                        headers=headers)
                    conversation_id = created.json()["conversation_id"]
                except Exception as exc:  # noqa: BLE001
                    recorder.record("chat", 0.0, f"conversation create: {exc!r}")
                calls = {
                    "login": lambda: login(http),
                    "list_kbs": lambda: http.get("/api/v1/knowledge-bases/", headers=headers),
                    "list_files": lambda: http.get(f"/api/v1/knowledge-bases/{kb_id}/files/", headers=headers),
                    "search": lambda: http.post("/api/v1/search/", headers=headers, json={
                        "query": "spice trade revenue", "knowledge_base_ids": [kb_id], "top_k": 3}),
                    "chat": lambda: http.post(f"/api/v1/conversations/{conversation_id}/messages/?stream=false",
                                              headers=headers, json={"question": "How did revenue grow?",
                                                                     "parent_message_id": None}),
                }
                started.wait(300)
                schedule = _schedule(operations, login_every=login_every, offset=index)
                pause = random.Random(index)
                while time.monotonic() < clock["stop_at"]:
                    if think_ms:
                        time.sleep(think_ms * pause.uniform(0.5, 1.5) / 1000)
                        if time.monotonic() >= clock["stop_at"]:
                            break
                    op = next(schedule)
                    t0 = time.perf_counter()
                    error, server_ms = None, None
                    try:
                        response = calls[op]()
                        if response.status_code >= 400:
                            error = f"{response.status_code} {response.text[:160]}"
                        server_ms = _server_timing_ms(response.headers.get("Server-Timing", ""))
                    except Exception as exc:  # noqa: BLE001 - a failed request is an error, not a crash
                        error = repr(exc)[:200]
                    recorder.record(op, (time.perf_counter() - t0) * 1000, error, server_ms)

        threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
        for thread in threads:
            thread.start()
        started.wait(300)
        t_start = time.monotonic()
        for thread in threads:
            thread.join(seconds + 120)
        elapsed = time.monotonic() - t_start
        cpu_used = cpu.stop()

        per_op = {}
        for op in operations:
            values = recorder.latencies[op]
            server = recorder.server_ms[op]
            # p50/p95 as the client saw them; server_*: Django's own time (Server-Timing), without the waits for
            # a gunicorn thread, the network and the client's own scheduling on this host
            per_op[op] = {"count": len(values), "errors": recorder.errors[op], "p50_ms": _percentile(values, 0.5),
                          "p95_ms": _percentile(values, 0.95), "max_ms": round(max(values), 2) if values else None,
                          "server_p50_ms": _percentile(server, 0.5), "server_p95_ms": _percentile(server, 0.95)}
        total = sum(v["count"] for v in per_op.values())
        errors = sum(v["errors"] for v in per_op.values())
        list_p95 = [per_op[op]["p95_ms"] for op in LIST_READ_OPS if op in per_op and per_op[op]["p95_ms"] is not None]
        return {
            "clients": clients, "seconds": seconds, "think_ms": think_ms, "login_every": login_every,
            "elapsed_s": round(elapsed, 2),
            "operations": per_op,
            "skipped": skipped, "requests": total, "errors": errors,
            "error_rate": round(errors / total, 4) if total else None,
            "req_per_s": round(total / elapsed, 1) if elapsed else None,
            "targets": {"list_read_p95_ms": P95_TARGET_MS, "error_rate": 0,
                        "list_read_p95_met": bool(list_p95) and max(list_p95) <= P95_TARGET_MS,
                        "error_rate_met": errors == 0},
            "error_samples": recorder.samples,
            # Where the time went: the web tier's CPU per request, and how busy the whole host was.
            "web_cpu_ms_per_request": round(cpu_used["web_s"] * 1000 / total, 2) if total and cpu_used else None,
            "host_cpu_busy_pct": cpu_used["host_busy_pct"] if cpu_used else None,
            "cpu_count": os.cpu_count(), "load_avg_1m_after": round(os.getloadavg()[0], 2),
        }


def _schedule(operations: list[str], *, login_every: int, offset: int):
    """The endless sequence of operations of one client, starting at `offset` so that clients interleave.

    People sign in once and then work: with login_every=N every N-th request is a login and the others go
    round-robin over the rest. login_every=0 keeps login in the round-robin."""
    others = [op for op in operations if op != "login"]
    if "login" not in operations or not login_every or not others:
        while True:
            yield operations[offset % len(operations)]
            offset += 1
    count = offset
    while True:
        count += 1
        if count % login_every == 0:
            yield "login"
        else:
            yield others[offset % len(others)]
            offset += 1


class CpuMeter:
    """CPU seconds of one process tree (the gunicorn master and its workers) and the host's busy share."""

    def __init__(self, root_pid: int | None):
        self.root_pid = root_pid
        self.begin: tuple[float, object] | None = None

    def _tree_seconds(self) -> float:
        import psutil

        try:
            root = psutil.Process(self.root_pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0.0
        for process in processes:
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.Error:  # a worker that exited meanwhile
                pass
        return total

    def start(self) -> None:
        import psutil

        if self.root_pid:
            self.begin = (self._tree_seconds(), psutil.cpu_times())

    def stop(self) -> dict | None:
        import psutil

        if not self.begin:
            return None
        web_before, host_before = self.begin
        host_after = psutil.cpu_times()
        busy = sum(host_after) - sum(host_before)
        idle = (host_after.idle + getattr(host_after, "iowait", 0)) - (host_before.idle
                                                                        + getattr(host_before, "iowait", 0))
        return {"web_s": self._tree_seconds() - web_before,
                "host_busy_pct": round(100 * (busy - idle) / busy, 1) if busy else None}


def host_speed_ms(rounds: int = 5) -> float:
    """Median time of one password hash (the login's own work) on an idle moment of this host.

    Shared and throttled machines change speed from minute to minute; runs are comparable only at a similar
    figure, so each report carries it, taken before and after the load."""
    from django.contrib.auth.hashers import make_password

    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        make_password("bench-calibration")
        times.append((time.perf_counter() - started) * 1000)
    return round(sorted(times)[len(times) // 2], 2)


def _dumps(report: dict) -> str:
    return json.dumps(report, sort_keys=False)
