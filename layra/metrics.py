"""Prometheus series of the product (served at /metrics beside django-prometheus's).

Latencies are observed where the work happens (web process); states that live in the
stores (job states, pages ingested, queue depth) are read at scrape time, so they are
right whichever worker did the work.

Under gunicorn every worker process writes its series to PROMETHEUS_MULTIPROC_DIR
(gunicorn.conf.py sets and clears it) and a scrape, answered by any one worker, sums them.
Celery task outcomes and durations are counted in Redis by the worker that ran the task
(layra.celery's signals) and read at scrape time too: workers run in other containers and
hosts than the web, so no multiprocess directory is shared with them, and the web's
/metrics stays the one scrape target.
"""

import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from layra.redis import redis_client

logger = logging.getLogger(__name__)

SEARCH_LATENCY = Histogram(
    "layra_search_latency_seconds", "Retrieval (embed + ANN + MaxSim) latency.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LLM_LATENCY = Histogram(
    "layra_llm_latency_seconds", "Time to the end of an LLM answer.", ["source"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
LLM_ERRORS = Counter("layra_llm_errors_total", "LLM calls that failed.", ["source", "status"])
QUEUES = ("default", "ingest", "gpu", "gpu_query")


GaugeSource = Callable[[], Iterable[GaugeMetricFamily]]
_gauge_sources: list[GaugeSource] = []


def gauge_source_add(source: GaugeSource) -> None:
    """Add gauges read from the stores at scrape time (an app above layra registers its own in ready())."""
    if source not in _gauge_sources:
        _gauge_sources.append(source)


class StoreCollector:
    """Gauges computed from the stores on each scrape."""

    def describe(self):
        # Without describe(), registering calls collect() at start-up, which would query the stores.
        return []

    def collect(self):
        for source in (*_gauge_sources, self._queues, celery_task_families):
            try:
                yield from list(source())
            except Exception as exc:  # noqa: BLE001 - a scrape must never fail because a store is down
                logger.warning("metrics: %s unavailable (%s)", getattr(source, "__name__", source),
                               type(exc).__name__)

    @staticmethod
    def _queues():
        """Tasks waiting per queue (errors are collect()'s to log, like every other source's)."""
        import redis
        from django.conf import settings

        if settings.CELERY_TASK_ALWAYS_EAGER or not settings.CELERY_BROKER_URL.startswith("redis"):
            return
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2)
        depth = GaugeMetricFamily("layra_queue_depth", "Tasks waiting per Celery queue.", labels=["queue"])
        for queue in QUEUES:
            depth.add_metric([queue], client.llen(queue))
        yield depth


_registered = False


def register_collectors() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(StoreCollector())
        _registered = True


def metrics_registry() -> CollectorRegistry:
    """What a scrape reads: every gunicorn worker's series (multiprocess mode) and the store gauges, or this
    process's registry when it serves alone (runserver, tests)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(StoreCollector())
    return registry


# --- Celery tasks: counted in Redis by the worker, read at scrape time ---------------------------------------

TASK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
TASK_OUTCOMES = {"SUCCESS": "succeeded", "FAILURE": "failed", "RETRY": "retried"}
_TASKS_KEY = "metrics:celery:tasks"
_SEP = "\x1f"  # never in a task or queue name


def celery_task_observe(*, task: str, queue: str, state: str, seconds: float) -> None:
    """Count one run of a task (its outcome and duration). Never raises: a metric must not fail a task."""
    outcome = TASK_OUTCOMES.get(state, state.lower())
    bucket = next((str(b) for b in TASK_BUCKETS if seconds <= b), "+Inf")
    try:
        pipe = redis_client("task").pipeline(transaction=False)
        pipe.hincrby(_TASKS_KEY, _SEP.join((task, queue, "outcome", outcome)), 1)
        pipe.hincrby(_TASKS_KEY, _SEP.join((task, queue, "bucket", bucket)), 1)
        pipe.hincrbyfloat(_TASKS_KEY, _SEP.join((task, queue, "sum", "")), seconds)
        pipe.execute()
    except Exception as exc:  # noqa: BLE001
        logger.warning("metrics: task %s not counted (%s)", task, type(exc).__name__)


def celery_task_families():
    """layra_celery_tasks_total{task,queue,outcome} and layra_celery_task_duration_seconds{task,queue}."""
    counts = CounterMetricFamily("layra_celery_tasks", "Celery task runs by outcome (succeeded, failed, retried).",
                                 labels=["task", "queue", "outcome"])
    buckets: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for field, value in redis_client("task").hgetall(_TASKS_KEY).items():
        task, queue, kind, name = field.split(_SEP)
        if kind == "outcome":
            counts.add_metric([task, queue, name], float(value))
        else:
            buckets[(task, queue)][name or kind] = float(value)
    durations = HistogramMetricFamily("layra_celery_task_duration_seconds", "Celery task run time (every outcome).",
                                      labels=["task", "queue"])
    for labels, values in sorted(buckets.items()):
        cumulative, total = [], 0.0
        for bound in (*map(str, TASK_BUCKETS), "+Inf"):
            total += values.get(bound, 0.0)
            cumulative.append((bound, total))
        durations.add_metric(list(labels), cumulative, sum_value=values.get("sum", 0.0))
    return [counts, durations]
