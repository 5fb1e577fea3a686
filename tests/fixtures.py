"""Per-test isolation on the real stores and the basic actors of most tests."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from layra.embedded import process_group_stop
from tests.plugin import ROOT, SERVICES


def _empty_bucket() -> None:
    from layra.storage import s3_client

    s3 = s3_client()
    bucket = settings.AWS_STORAGE_BUCKET_NAME
    while keys := [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})


def _drop_milvus_collections() -> None:
    """Drop every collection: the shared ones are made again (and loaded) by the next write or search."""
    from embeddings import collections, lexical
    from layra.milvus import milvus_client

    client = milvus_client()
    for name in client.list_collections():
        client.drop_collection(name)
    collections.forget_ready()
    lexical.reset()


def _empty_lexical_file() -> None:
    from embeddings.lexical.sqlite_fts import SqliteLexicalIndex

    SqliteLexicalIndex(path=settings.LEXICAL_SQLITE_PATH).clear()


def _drop_mongo_database() -> None:
    from layra.mongo import database
    from operations.indexes import mongo_indexes

    db = database()
    db.client.drop_database(db.name)
    mongo_indexes()  # as the deploy step does: no process makes collections or indexes on first use


def _flush_redis() -> None:
    from layra.redis import redis_client

    for purpose in settings.REDIS_DBS:
        redis_client(purpose).flushdb()


@pytest.fixture(autouse=True)
def _clean_stores():
    """Every test starts with empty Redis dbs, Mongo database, Milvus collections and bucket."""
    yield
    from layra import connections

    for clean in (_flush_redis, _drop_mongo_database, _drop_milvus_collections, _empty_lexical_file, _empty_bucket):
        try:
            clean()
        except Exception:  # noqa: BLE001 - a test may have stopped a server; reconnect next time
            connections.reset_all()


@pytest.fixture(autouse=True, scope="session")
def _bucket_and_collections():
    """What the deploy step makes before any process serves: the bucket, the Mongo collections and indexes."""
    from layra.storage import ensure_bucket
    from operations.indexes import mongo_indexes

    ensure_bucket()
    mongo_indexes()


@pytest.fixture
def services():
    """The running service processes, for tests that stop and restart one."""
    return SERVICES


@pytest.fixture
def user(db):
    from tests.factories import UserFactory

    return UserFactory()


@pytest.fixture
def other_user(db):
    from tests.factories import UserFactory

    return UserFactory()


@pytest.fixture
def anon_client():
    from rest_framework.test import APIClient

    return APIClient()


def _client_for(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user=user)
    client.user = user
    return client


@pytest.fixture
def api_client(user):
    """An API client authenticated as `user` (force_authenticate: login itself is tested in accounts)."""
    return _client_for(user)


@pytest.fixture
def other_client(other_user):
    return _client_for(other_user)


class Worker:
    """A real Celery worker subprocess consuming every queue from the test broker."""

    def __init__(self, env: dict):
        self.env = env
        self.log_path = Path(os.environ["LAYRA_TEST_RUN_DIR"]) / "logs" / f"worker-{time.time_ns()}.log"
        self.args = [sys.executable, "-m", "celery", "-A", "layra", "worker", "-Q", "default,ingest,gpu",
                     "-c", "1", "--pool", "prefork", "--without-gossip", "--without-mingle",
                     "--without-heartbeat", "-l", "INFO"]
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while b"ready." not in self.log_path.read_bytes()[offset:]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the whole worker process group, as a crash would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        process_group_stop(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def idle_worker(transactional_db, settings):
    """A real worker on the test database, not started yet: tasks published by the test wait in the broker until
    the test calls `idle_worker.start()` (to see a task's queued state)."""
    from layra.celery import app

    db_name = settings.DATABASES["default"]["NAME"]
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    env = {**os.environ, "DATABASE_URL": f"{base}/{db_name}", "CELERY_TASK_ALWAYS_EAGER": "false",
           "PYTHONUNBUFFERED": "1"}
    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    worker = Worker(env)
    yield worker
    if worker.process is not None:
        worker.stop()
    app.conf.task_always_eager = True


@pytest.fixture
def celery_worker(idle_worker):
    """Start a real worker on the test database; tasks published by the test go through the broker."""
    idle_worker.start()
    return idle_worker


@pytest.fixture
def restartable_worker(monkeypatch, request):
    """A real worker whose crashes the product recovers from quickly: the broker restores an unacked task after
    6 s (swept every 2 s; production: 1 h). The ingestion lock and the workflow run claim keep their production
    settings: a redelivered task takes over from a dead owner process by itself (layra.locks, layra.owner)."""
    monkeypatch.setenv("CELERY_VISIBILITY_TIMEOUT", "6")
    monkeypatch.setenv("CELERY_UNACKED_RESTORE_INTERVAL", "2")
    return request.getfixturevalue("celery_worker")


def _milvus_forget() -> None:
    from embeddings import collections, lexical
    from layra import milvus

    milvus.reset()
    collections.forget_ready()
    lexical.reset()


@pytest.fixture(params=["default", "production"])
def index_stack(request, settings):
    """Both retrieval paths: the default stack (Milvus 2.3 standalone + SQLite FTS5) and production's (Milvus 2.5
    API with dense and BM25 in Milvus, served here by Milvus Lite 3.x)."""
    if request.param == "production":
        settings.MILVUS_URI = os.environ["MILVUS_LITE_URI"]
        _milvus_forget()
    yield request.param
    if request.param == "production":
        _drop_milvus_collections()
        _milvus_forget()
