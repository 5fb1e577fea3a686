"""Gunicorn settings (read from the working directory; command-line flags override them)."""

import os

from layra.compute_threads import web_compute_threads_limit

web_compute_threads_limit()  # in the master, before any import of torch or numpy: every worker inherits it

worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# A chat answer (and an SSE progress stream) holds its thread while the model writes, seconds to minutes, at
# no CPU cost. With 8 threads a worker, 16 answers in flight left nothing for the rest of the API: with a model
# taking 2 s, bench_api measured list p95 1.28 s at 2x8 threads and 74 ms at 2x32. Each thread may keep one
# MySQL connection (CONN_MAX_AGE): workers x threads per web host must stay under the server's max_connections.
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))  # SSE answers and uploads stay open for long
graceful_timeout = 30
# Idle keep-alive connections stay open longer than a client's pause between requests. With the default (2 s)
# a busy worker closed connections on which the next request was already in flight: the client got a reset.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))


def post_worker_init(worker):
    """Warm the worker up before it takes requests (operations.warmup): imports, store clients and the query embedder
    (GUNICORN_PRELOAD_EMBEDDER=false skips the model). Loaded lazily, the first searches after a start waited
    seconds behind the model load and held up every request of that worker meanwhile."""
    from operations.warmup import warm_up

    embedder = os.environ.get("GUNICORN_PRELOAD_EMBEDDER", "true").lower() in ("1", "true", "yes")
    worker.log.info("warm-up: %s", warm_up(embedder=embedder))
