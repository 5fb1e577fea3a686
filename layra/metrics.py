"""Prometheus series of the product (served at /metrics beside django-prometheus's).

Latencies are observed where the work happens (web process); states that live in the
stores (job states, pages ingested, queue depth) are read at scrape time, so they are
right whichever worker did the work.
"""

import logging
from collections.abc import Callable, Iterable

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

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
        for source in (*_gauge_sources, self._queues):
            try:
                yield from list(source())
            except Exception as exc:  # noqa: BLE001 - a scrape must never fail because a store is down
                logger.warning("metrics: %s unavailable (%s)", getattr(source, "__name__", source),
                               type(exc).__name__)

    def _queues(self):
        try:
            import redis
            from django.conf import settings

            if settings.CELERY_TASK_ALWAYS_EAGER or not settings.CELERY_BROKER_URL.startswith("redis"):
                return
            client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2)
            depth = GaugeMetricFamily("layra_queue_depth", "Tasks waiting per Celery queue.", labels=["queue"])
            for queue in QUEUES:
                depth.add_metric([queue], client.llen(queue))
            yield depth
        except Exception as exc:  # noqa: BLE001
            logger.warning("metrics: queue depth unavailable (%s)", type(exc).__name__)


_registered = False


def register_collectors() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(StoreCollector())
        _registered = True
