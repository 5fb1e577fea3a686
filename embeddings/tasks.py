"""Thin tasks of the embeddings layer, and the GPU worker's model preload."""

import logging
import threading

from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings

from embeddings.embedders import get_embedder
from embeddings.query import EMBED_QUERY_TASK, query_embed_reply

logger = logging.getLogger(__name__)


# Early ack (acks_late=False, against the project default): a query is read-only and answered within seconds or
# not at all. Redelivered after a worker crash it would arrive after its caller's timeout (and be dropped as
# expired); the caller has already answered 503 and the user can search again. time_limit leaves room for the
# first query of a fresh worker, which loads the model.
@shared_task(name=EMBED_QUERY_TASK, acks_late=False, ignore_result=True, time_limit=300,
             soft_time_limit=280)
def embed_query(*, text: str, reply_key: str) -> None:
    query_embed_reply(text=text, reply_key=reply_key)


def _embedder_load() -> None:
    try:
        logger.info("embedder %s loaded at worker start", get_embedder().name)
    except Exception:  # noqa: BLE001 - the first task loads it again and reports the error
        logger.exception("embedder preload failed")


@worker_process_init.connect
def _embedder_preload(**_kwargs) -> None:
    """WORKER_PRELOAD_EMBEDDER: each worker process loads the model as it starts, not on its first query (which
    would wait for the load past its caller's timeout). In a thread: worker_process_init must return within
    seconds; a task arriving meanwhile waits on the registry's lock."""
    if settings.WORKER_PRELOAD_EMBEDDER:
        threading.Thread(target=_embedder_load, name="embedder-preload", daemon=True).start()
