"""Gunicorn settings (read from the working directory; command-line flags override them)."""

import os
import tempfile

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


# --- observability: one /metrics for all workers, JSON access logs ---------------------------------------------
# Every worker writes its Prometheus series to this directory and a scrape (answered by any worker) sums them
# (layra.metrics.metrics_registry). Set here, before any worker imports prometheus_client; one per master unless
# the deployment names one, and emptied at start, so a restart never adds the previous run's counters.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), f"layra-metrics-{os.getpid()}"))
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# Access log lines as JSON through the product's formatter, with the request id (layra.access_log).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
logger_class = "layra.access_log.JsonGunicornLogger"


def on_starting(server):
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.unlink(os.path.join(directory, name))


def child_exit(server, worker):
    """A dead worker's live gauges leave the scrape; its counters stay in the sums (they never go back)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
