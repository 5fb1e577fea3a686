"""Query vectors where the model lives: in-process for CPU embedders, on the GPU worker for ColQwen2.5.

With `EMBEDDER=colqwen` a web process must not load a 3.75B model on CPU. `query_vectors_embed` then sends the
query to the `gpu_query` Celery queue (`embeddings.embed_query`, consumed only by GPU workers) and waits for the
answer on a Redis list, at most `QUERY_EMBED_TIMEOUT_S`; no answer in time is a 503 (`embedder_unavailable`).

The answer comes back on a reply list of its own (`query_embed:{uuid}`, BLPOP), not through a Celery result
backend: the project runs without one, and a backend's result consumer is one pub/sub connection per backend
object, not meant to be shared by a web worker's threads. A list is one round trip, thread-safe through the
client's pool, and expires by itself. The vectors travel as float16 bytes (base64) with their shape: a 20-token
query is 5 KB, not a JSON list of floats.
"""

import base64
import json
import logging
import time
import uuid

import numpy as np
from django.conf import settings

from embeddings.embedders import get_embedder
from embeddings.embedders.base import l2_normalise
from layra.celery import app as celery_app
from layra.errors import ServiceUnavailable
from layra.redis import redis_client

logger = logging.getLogger(__name__)

REMOTE_EMBEDDERS = frozenset({"colqwen"})  # embedders whose queries the GPU worker embeds by default
QUEUE = "gpu_query"
EMBED_QUERY_TASK = "embeddings.embed_query"
REPLY_PREFIX = "query_embed:"
REPLY_TTL_S = 60  # an answer nobody waits for any more (the caller timed out) goes away by itself
_WAIT_STEP_S = 2.0  # one BLPOP blocks at most this long: below the Redis client's socket timeout (5 s)


def query_embed_remote() -> bool:
    """True where queries go to a GPU worker: QUERY_EMBED_REMOTE (by default, for the GPU embedders), unless
    Celery runs eagerly (no broker, so no worker either: the query is embedded in-process)."""
    remote = settings.QUERY_EMBED_REMOTE
    remote = settings.EMBEDDER in REMOTE_EMBEDDERS if remote is None else bool(remote)
    return remote and not celery_app.conf.task_always_eager


def query_vectors_embed(*, text: str) -> np.ndarray:
    """The query's token vectors, float32 (n, dim), rows L2-normalised.

    In-process for in-process embedders and when Celery runs eagerly (no broker, so no GPU worker either);
    otherwise on a GPU worker. Raises ServiceUnavailable (503, `embedder_unavailable`) when none answers in time.
    """
    return _remote(text=text) if query_embed_remote() else query_vectors_local(text=text)


def query_vectors_local(*, text: str) -> np.ndarray:
    """Embed in this process with the configured embedder (loaded on first use)."""
    return get_embedder().embed_queries([text])[0]


def query_embed_reply(*, text: str, reply_key: str) -> None:
    """The GPU worker's side: embed in-process and push the answer (or the failure) to the caller's list."""
    try:
        reply = {"vectors": vectors_pack(matrix=query_vectors_local(text=text))}
    except Exception as exc:  # noqa: BLE001 - the caller gets a fast 503 instead of waiting for its timeout
        logger.exception("query embedding failed")
        reply = {"error": type(exc).__name__}
    client = redis_client("task")
    with client.pipeline() as pipe:
        pipe.rpush(reply_key, json.dumps(reply))
        pipe.expire(reply_key, REPLY_TTL_S)
        pipe.execute()


def vectors_pack(*, matrix: np.ndarray) -> dict:
    matrix = np.ascontiguousarray(matrix, dtype=np.float16)
    return {"shape": list(matrix.shape), "dtype": "float16", "data": base64.b64encode(matrix.tobytes()).decode()}


def vectors_unpack(*, payload: dict) -> np.ndarray:
    """float32 rows, L2-normalised again after the float16 trip."""
    raw = base64.b64decode(payload["data"])
    matrix = np.frombuffer(raw, dtype=np.dtype(payload["dtype"])).reshape(payload["shape"])
    return l2_normalise(matrix)


def _unavailable(message: str, *, timeout: float) -> ServiceUnavailable:
    return ServiceUnavailable(message, code="embedder_unavailable", details={"queue": QUEUE, "timeout_s": timeout})


def _remote(*, text: str) -> np.ndarray:
    timeout = float(settings.QUERY_EMBED_TIMEOUT_S)
    reply_key = f"{REPLY_PREFIX}{uuid.uuid4().hex}"
    deadline = time.monotonic() + timeout
    # expires: a query still queued when its caller has given up is dropped by the worker, never embedded.
    # By name (embeddings.tasks imports this module); CELERY_TASK_ROUTES sends it to QUEUE.
    celery_app.send_task(EMBED_QUERY_TASK, kwargs={"text": text, "reply_key": reply_key}, expires=timeout)
    client = redis_client("task")
    while (remaining := deadline - time.monotonic()) > 0:
        item = client.blpop([reply_key], timeout=max(min(remaining, _WAIT_STEP_S), 0.01))
        if item is None:
            continue
        reply = json.loads(item[1])
        if "error" in reply:
            logger.warning("the GPU worker failed to embed a query: %s", reply["error"])
            raise _unavailable("The GPU worker could not embed the query; try again shortly.", timeout=timeout)
        return vectors_unpack(payload=reply["vectors"])
    raise _unavailable(f"No GPU worker answered the query embedding within {timeout:g} s; try again shortly.",
                       timeout=timeout)
