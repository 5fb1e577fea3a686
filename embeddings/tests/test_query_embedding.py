"""Query embedding where the model lives: in-process for MiniLM, on the GPU worker (gpu_query queue) for ColQwen.

The worker tests start a real Celery worker process on the test broker, consuming only `gpu_query`, with
EMBEDDER=colqwen and the tiny random ColQwen2.5. The test process plays the web process: its own COLQWEN_MODEL
points at a folder that does not exist, so any attempt to load the model here would fail.
"""

import base64
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from embeddings import embedders
from embeddings.query import query_embed_remote, query_vectors_embed, vectors_pack, vectors_unpack
from layra.errors import ServiceUnavailable
from tests.fixtures import Worker
from tests.waiting import eventually

QUERIES = ["what was the revenue in 2023", "invoice", "photosynthesis in plants", "quarterly report growth"]
FP16_ATOL = 2e-3  # float16 keeps ~3 decimal digits of a unit vector's components


@pytest.fixture
def broker(settings):
    """Tasks go through the test broker for this test (no eager run in this process)."""
    from layra.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def colqwen_web(settings, tmp_path):
    """A web process configured for ColQwen whose own copy of the model could never load."""
    settings.EMBEDDER = "colqwen"
    settings.COLQWEN_MODEL = str(tmp_path / "no-model-in-the-web-process")
    settings.QUERY_EMBED_REMOTE = None
    embedders.reset()
    yield settings
    embedders.reset()


@pytest.fixture
def gpu_query_worker(broker, tiny_colqwen_path):
    """A real worker consuming only the gpu_query queue with the tiny ColQwen2.5; started by the test."""
    env = {**os.environ, "CELERY_TASK_ALWAYS_EAGER": "false", "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO",
           "EMBEDDER": "colqwen", "COLQWEN_MODEL": tiny_colqwen_path, "COLQWEN_MAX_NUM_VISUAL_TOKENS": "64",
           "WORKER_PRELOAD_EMBEDDER": "true"}
    worker = Worker(env)
    worker.args[worker.args.index("-Q") + 1] = "gpu_query"
    yield worker
    worker.stop()


def _reply_keys() -> list[str]:
    from layra.redis import redis_client

    return list(redis_client("task").scan_iter(match="query_embed:*"))


def _wait_for_log(worker: Worker, text: str, timeout: float = 120) -> None:
    eventually(lambda: text in worker.log(), timeout=timeout, context=lambda: worker.log()[-3000:])


def test_embed_query_is_routed_to_the_gpu_query_queue():
    from layra.celery import app

    app.loader.import_default_modules()
    assert "gpu_query" in {queue.name for queue in app.conf.task_queues}
    assert app.amqp.router.route({}, "embeddings.embed_query")["queue"].name == "gpu_query"


def test_vectors_cross_the_broker_as_float16_bytes(rng):
    matrix = rng.standard_normal((20, 128)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    payload = vectors_pack(matrix=matrix)
    assert payload["shape"] == [20, 128] and payload["dtype"] == "float16"
    assert len(base64.b64decode(payload["data"])) == 20 * 128 * 2  # 2 bytes a value, not a JSON list of floats
    back = vectors_unpack(payload=payload)
    assert back.dtype == np.float32 and back.shape == (20, 128)
    np.testing.assert_allclose(back, matrix, atol=FP16_ATOL)
    np.testing.assert_allclose(np.linalg.norm(back, axis=1), 1.0, atol=1e-5)


def test_colqwen_queries_are_embedded_by_the_gpu_worker(gpu_query_worker, colqwen_web, tiny_colqwen):
    assert query_embed_remote()
    gpu_query_worker.start()
    _wait_for_log(gpu_query_worker, "embedder colqwen loaded at worker start")  # preloaded, not on a query
    colqwen_web.QUERY_EMBED_TIMEOUT_S = 10
    first = query_vectors_embed(text=QUERIES[0])
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:  # concurrent callers (a web worker's threads) each get their own answer
        remote = list(pool.map(lambda text: query_vectors_embed(text=text), QUERIES))
    elapsed = time.monotonic() - started

    local = tiny_colqwen.embed_queries(QUERIES)
    np.testing.assert_allclose(first, local[0], atol=FP16_ATOL)
    for got, want in zip(remote, local, strict=True):
        assert got.dtype == np.float32 and got.shape == want.shape and got.shape[1] == 128
        np.testing.assert_allclose(got, want, atol=FP16_ATOL)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert remote[0].shape != remote[1].shape  # not one answer handed to every caller
    assert elapsed < 10, f"4 queries on a warm worker took {elapsed:.1f} s"
    assert _reply_keys() == []  # every answer was taken by its caller


def test_no_gpu_worker_is_a_503_within_the_timeout(broker, colqwen_web):
    from layra.exception_handler import exception_handler

    colqwen_web.QUERY_EMBED_TIMEOUT_S = 1.5
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as caught:
        query_vectors_embed(text="what was the revenue in 2023")
    elapsed = time.monotonic() - started
    assert 1.4 <= elapsed < 4, elapsed
    assert (caught.value.status_code, caught.value.code) == (503, "embedder_unavailable")
    assert "No GPU worker answered" in caught.value.message

    response = exception_handler(caught.value, {})  # the API's one handler: the project's JSON error shape
    assert response.status_code == 503
    assert response.data == {"error": {"code": "embedder_unavailable", "message": caught.value.message,
                                       "details": {"queue": "gpu_query", "timeout_s": 1.5}}}


def test_a_query_nobody_waits_for_is_dropped_not_embedded(gpu_query_worker, colqwen_web):
    colqwen_web.QUERY_EMBED_TIMEOUT_S = 1
    with pytest.raises(ServiceUnavailable):
        query_vectors_embed(text="a question asked while no GPU worker runs")
    gpu_query_worker.start()
    colqwen_web.QUERY_EMBED_TIMEOUT_S = 120
    assert query_vectors_embed(text="invoice").shape[1] == 128  # the worker is behind the stale message
    assert "Discarding revoked task: embeddings.embed_query" in gpu_query_worker.log()
    assert _reply_keys() == []  # the stale query was never answered


@pytest.mark.django_db
def test_search_api_without_a_gpu_worker_is_a_503(broker, colqwen_web, api_client, user):
    from knowledge.services import kb_version_bump, knowledge_base_create

    kb = knowledge_base_create(user=user, name="Scans")
    kb_version_bump(knowledge_base_id=kb.knowledge_base_id, embedder="colqwen:128")  # as after its first file
    colqwen_web.QUERY_EMBED_TIMEOUT_S = 1
    response = api_client.post("/api/v1/search/", {"query": "revenue 2023", "knowledge_base_ids": [
        kb.knowledge_base_id]}, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "embedder_unavailable"


def test_minilm_queries_stay_in_process(broker, settings):
    settings.EMBEDDER = "minilm"
    settings.QUERY_EMBED_REMOTE = None
    settings.QUERY_EMBED_TIMEOUT_S = 0.5  # a trip to the (absent) GPU worker would fail
    assert not query_embed_remote()
    vectors = query_vectors_embed(text="revenue growth")
    np.testing.assert_array_equal(vectors, embedders.get_embedder().embed_queries(["revenue growth"])[0])


def test_eager_celery_embeds_colqwen_queries_in_process(colqwen_web, tiny_colqwen_path, tiny_colqwen):
    colqwen_web.COLQWEN_MODEL = tiny_colqwen_path  # no broker, so no GPU worker: this process embeds
    assert not query_embed_remote()
    vectors = query_vectors_embed(text="invoice")
    np.testing.assert_allclose(vectors, tiny_colqwen.embed_queries(["invoice"])[0], atol=1e-5)


def test_web_warm_up_does_not_load_colqwen_when_the_gpu_worker_embeds_queries(broker, colqwen_web):
    from operations.warmup import warm_up

    assert warm_up(embedder=True)["query_embedder"] == "remote"
    colqwen_web.QUERY_EMBED_REMOTE = False  # in-process by choice: the warm-up loads it (and fails here)
    assert warm_up(embedder=True)["query_embedder"] == "failed"
