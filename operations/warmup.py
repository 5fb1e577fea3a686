"""Work a web worker does once, before its first request, instead of inside its first requests.

Loaded lazily, each of these cost the first requests of every worker: the URL conf imports every view (~1 s of
CPU), the Milvus client imports gRPC, the OpenAI SDK imports its resources on first use, and the query embedder
loads its weights (seconds). After a deploy or a restart those requests queued behind the loading. Where the GPU
worker embeds queries (embeddings/query.py) a web process never loads the model, here or later.
"""

import logging

logger = logging.getLogger(__name__)


def _url_conf() -> None:
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - the property imports every view module


def _llm_client() -> None:
    import openai.resources.chat.completions  # noqa: F401 - the SDK imports it on the first answer


def _object_store() -> None:
    from layra.storage import is_s3, s3_client

    if is_s3():
        s3_client()


def _vector_store() -> None:
    from django.conf import settings

    from layra.milvus import milvus_client

    if "://" in settings.MILVUS_URI:  # a server; a Milvus Lite file is opened by the process that searches
        milvus_client()


def _query_embedder() -> str:
    from embeddings.query import query_embed_remote

    if query_embed_remote():
        return "remote"  # the GPU worker embeds queries: a web process never loads that model
    from embeddings.embedders import get_embedder

    get_embedder()
    return "ok"


STEPS = {"url_conf": _url_conf, "llm_client": _llm_client, "object_store": _object_store,
         "vector_store": _vector_store, "query_embedder": _query_embedder}


def warm_up(*, embedder: bool = True) -> dict[str, str]:
    """Run every step; a failing step (a store down at start) is logged and left to the first request."""
    done = {}
    for name, step in STEPS.items():
        if name == "query_embedder" and not embedder:
            done[name] = "skipped"
            continue
        try:
            done[name] = step() or "ok"
        except Exception:  # noqa: BLE001 - the worker must still start; the request path retries
            logger.exception("warm-up step %s failed", name)
            done[name] = "failed"
    return done
