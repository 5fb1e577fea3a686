"""Ingest a generated multi-page PDF through the real pipeline (a real worker subprocess, the configured
embedder) and print throughput and per-stage seconds.

`--kill-workers N` ingests the same PDF again and SIGKILLs the worker's pool process N times while it runs (as
the OOM killer would); the worker's main process requeues the task and a new pool process takes it over. The
figure is the time to the completed file with the kills against the clean run's, and the file's vector rows
against the clean run's (a duplicate set would show).

With no broker configured (the embedded defaults), the command starts private servers in a temporary
directory (redis-server, SecantusDB, Milvus Lite, an S3 server) and runs itself against them.
"""

import json as jsonlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

ROOT = Path(__file__).resolve().parents[3]


class Command(BaseCommand):
    help = "Benchmark the ingestion pipeline: pages per second and seconds per stage."

    def add_arguments(self, parser):
        parser.add_argument("--pages", type=int, default=200)
        parser.add_argument("--json", action="store_true", help="print one JSON object only")
        parser.add_argument("--private", action="store_true",
                            help="start private servers even when a broker is configured")
        parser.add_argument("--inner", action="store_true", help="(internal) run against the current settings")
        parser.add_argument("--lines", type=int, default=8, help="text lines per generated page")
        parser.add_argument("--timeout", type=int, default=900)
        parser.add_argument("--kill-workers", type=int, default=0,
                            help="then ingest the PDF again, killing the worker's pool process this many times")

    def handle(self, *args, pages, json, private, inner, lines, timeout, kill_workers, **options):
        if inner or (not private and not settings.CELERY_TASK_ALWAYS_EAGER):
            result = self._run(pages=pages, lines=lines, timeout=timeout, kills=kill_workers)
        else:
            result = self._run_private(pages=pages, lines=lines, timeout=timeout, kills=kill_workers)
        if json:
            self.stdout.write(_json_dumps(result))
        else:
            for key, value in result.items():
                self.stdout.write(f"{key}: {value}")

    # --- private servers --------------------------------------------------------------------------------

    def _run_private(self, *, pages: int, lines: int, timeout: int, kills: int) -> dict:
        from layra import embedded

        with embedded.private_run("layra-bench-") as (_services, run_dir, stack_env):
            env = {**stack_env, "DATABASE_URL": f"sqlite:///{run_dir / 'db.sqlite3'}",
                   "CELERY_TASK_ALWAYS_EAGER": "false", "LOG_LEVEL": "WARNING", "HF_HUB_OFFLINE": "1",
                   "TRANSFORMERS_OFFLINE": "1", "RATE_LIMIT_ENABLED": "false"}
            manage = [sys.executable, str(ROOT / "manage.py")]
            subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)
            inner = [*manage, "bench_ingest", "--inner", "--json", "--pages", str(pages), "--lines", str(lines),
                     "--timeout", str(timeout), "--kill-workers", str(kills)]
            out = subprocess.run(inner, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise CommandError(f"benchmark failed:\n{out.stderr[-4000:]}")
            return json_loads_last(out.stdout)

    # --- the measurement --------------------------------------------------------------------------------

    def _run(self, *, pages: int, lines: int, timeout: int, kills: int) -> dict:
        from django.contrib.auth import get_user_model
        from django.core.files.uploadedfile import SimpleUploadedFile

        from knowledge import purge, samples, services
        from knowledge.models import IngestionJob
        from layra.storage import ensure_bucket

        ensure_bucket()
        user, _ = get_user_model().objects.get_or_create(username="bench-ingest",
                                                         defaults={"email": "bench@example.com"})
        kb = services.knowledge_base_create(user=user, name="bench")
        kbs = [kb]
        log_path = Path(settings.DATA_DIR) / "bench-worker.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "CELERY_TASK_ALWAYS_EAGER": "false"}
        with open(log_path, "ab") as log:
            worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "layra", "worker", "-Q",
                                       "default,ingest,gpu", "-c", "1", "--without-gossip", "--without-mingle",
                                       "--without-heartbeat", "-l", "WARNING"], cwd=ROOT, env=env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        killer = _PoolKiller(worker.pid, kills)
        try:
            def ingest(name: str, data: bytes, *, kill: bool = False, kb=kb) -> IngestionJob:
                file = services.files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                                             uploaded_files=[SimpleUploadedFile(name, data)])[0]
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    job = IngestionJob.objects.get(task_id=file.task_id)
                    if kill:
                        killer.maybe_kill(job)
                    if job.is_terminal:
                        if job.state != IngestionJob.State.COMPLETED:
                            raise CommandError(f"{name}: {job.state}: {job.error}")
                        return job
                    if worker.poll() is not None:
                        raise CommandError(f"worker exited; see {log_path}")
                    time.sleep(0.05)
                raise CommandError(f"{name} not ingested in {timeout}s; see {log_path}")

            # Warm-up: worker start and model load are one-time costs, reported apart.
            started = time.perf_counter()
            ingest("warmup.pdf", samples.make_pdf(["warm-up page"]))
            warmup = time.perf_counter() - started

            pdf = samples.make_pdf([_page_text(n, lines) for n in range(1, pages + 1)])
            started = time.perf_counter()
            job = ingest("bench.pdf", pdf)
            seconds = time.perf_counter() - started
            crash = None
            if kills:
                started = time.perf_counter()
                # The same PDF in a KB of its own (within one KB it would be recognised, not ingested again).
                kbs.append(services.knowledge_base_create(user=user, name="bench killed"))
                killed_job = ingest("bench.pdf", pdf, kill=True, kb=kbs[-1])
                crash = {"kills": killer.kills, "each": killer.log, "seconds": round(time.perf_counter() - started, 3),
                         "clean_seconds": round(seconds, 3), "attempts": killed_job.attempts,
                         "stage_seconds": killed_job.stage_seconds,
                         "vector_rows": _vector_rows(killed_job.knowledge_base_id, killed_job.file_id),
                         "clean_vector_rows": _vector_rows(kb.knowledge_base_id, job.file_id)}
        finally:
            os.killpg(worker.pid, 15)
            worker.wait(30)
            for made in kbs:
                services.knowledge_base_delete(user=user, knowledge_base_id=made.knowledge_base_id)
                purge.knowledge_base_purge(knowledge_base_id=made.knowledge_base_id)
        stages = dict(job.stage_seconds)
        queued = (job.started_at - job.created_at).total_seconds() if job.started_at else None
        return {"pages": job.pages_total, "seconds": round(seconds, 3),
                "pages_per_s": round(job.pages_total / seconds, 2), "stage_seconds": stages,
                "queue_wait_seconds": round(queued, 3) if queued is not None else None,
                "warmup_seconds": round(warmup, 3), "embedder": settings.EMBEDDER,
                "lines_per_page": lines, "render_dpi": settings.KNOWLEDGE_RENDER_DPI,
                "embed_batch": settings.KNOWLEDGE_EMBED_BATCH, **({"kill_workers": crash} if crash else {})}


class _PoolKiller:
    """SIGKILLs the worker's pool process mid-step (a delivery holds the file's lock), up to `kills` times, each
    after the job moved on (its state, pages or stage timings: a new delivery works) since the previous kill."""

    def __init__(self, worker_pid: int, kills: int):
        self.worker_pid = worker_pid
        self.left = kills
        self.kills = 0
        self.last: tuple | None = None
        self.last_at = 0.0
        self.log: list[dict] = []  # per kill: the job's state, and the seconds until a new delivery moved it on

    def maybe_kill(self, job) -> None:
        from knowledge.models import IngestionJob

        running = (IngestionJob.State.CONVERTING, IngestionJob.State.RENDERING, IngestionJob.State.EMBEDDING)
        progress = (job.state, job.pages_done, job.attempts, str(job.stage_seconds))  # a delivery is working
        if self.log and "resumed_after_s" not in self.log[-1] and progress != self.last:
            self.log[-1]["resumed_after_s"] = round(time.monotonic() - self.last_at, 2)
        if (not self.left or job.state not in running or progress == self.last
                or time.monotonic() - self.last_at < 1 or not _lock_held(job.file_id)):
            return
        for pid in _children(self.worker_pid):
            os.kill(pid, signal.SIGKILL)
        self.left, self.kills = self.left - 1, self.kills + 1
        self.log.append({"state": job.state})
        self.last, self.last_at = progress, time.monotonic()


def _lock_held(file_id: str) -> bool:
    from layra.redis import redis_client

    return redis_client("lock").exists(f"lock:ingest:{file_id}") == 1


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return children


def _vector_rows(knowledge_base_id: str, file_id: str) -> int:
    from embeddings.collections import dense_collection_name
    from embeddings.embedders import embedder_spec
    from layra.milvus import milvus_client

    spec = embedder_spec()
    name = dense_collection_name(embedder=spec.name, dim=spec.dim)
    return len(milvus_client().query(name, filter=f'knowledge_base_id == "{knowledge_base_id}" and file_id == '
                                                  f'"{file_id}"', output_fields=["image_id"], limit=16384,
                                     consistency_level="Strong"))


_WORDS = ("visual", "retrieval", "augmented", "generation", "renders", "every", "page", "and", "embeds", "it")


def _page_text(n: int, lines: int) -> str:
    """A heading and `lines` lines of 12 words, different on every page."""
    body = [" ".join(_WORDS[(n + i + j) % len(_WORDS)] for j in range(12)) for i in range(lines)]
    return f"Benchmark page {n}\n" + "\n".join(body)


def _json_dumps(result: dict) -> str:
    return jsonlib.dumps(result)


def json_loads_last(stdout: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return jsonlib.loads(line)
    raise CommandError(f"no JSON in benchmark output:\n{stdout[-2000:]}")
