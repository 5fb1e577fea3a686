"""/metrics exposes django-prometheus and the product series (job states, pages, queue depth, latencies)."""

import pytest

from tests.operators_helpers import ingest

pytestmark = pytest.mark.django_db


def test_metrics_expose_named_series(user, django_capture_on_commit_callbacks, anon_client, settings):
    from layra.metrics import LLM_ERRORS, LLM_LATENCY, SEARCH_LATENCY
    from layra.redis import redis_client

    ingest(user, django_capture_on_commit_callbacks)  # 2 completed jobs, 3 pages
    SEARCH_LATENCY.observe(0.02)
    LLM_LATENCY.labels(source="chat").observe(1.2)
    LLM_ERRORS.labels(source="chat", status="502").inc()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    broker = redis_client("task").__class__.from_url(settings.CELERY_BROKER_URL)
    broker.rpush("ingest", "m1", "m2")
    try:
        body = anon_client.get("/metrics").content.decode()
    finally:
        broker.delete("ingest")
    assert 'layra_ingestion_jobs{state="completed"} 2.0' in body
    assert 'layra_ingestion_jobs{state="failed"} 0.0' in body
    assert "layra_ingestion_pages 3.0" in body
    assert 'layra_queue_depth{queue="ingest"} 2.0' in body
    assert "layra_search_latency_seconds_bucket" in body and "layra_search_latency_seconds_count" in body
    assert 'layra_llm_latency_seconds_count{source="chat"}' in body
    assert 'layra_llm_errors_total{source="chat",status="502"}' in body
    assert "django_http_requests_before_middlewares_total" in body


def test_job_stats():
    from operations.stats import ingestion_job_stats

    stats = ingestion_job_stats()
    assert stats["pages_done"] == 0 and set(stats["states"]) >= {"queued", "completed", "failed"}


def test_search_observes_its_latency(user):
    from prometheus_client import REGISTRY

    from knowledge.search import search
    from knowledge.services import knowledge_base_create

    kb = knowledge_base_create(user=user, name="metrics")
    before = REGISTRY.get_sample_value("layra_search_latency_seconds_count") or 0
    search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="anything", top_k=3)
    assert REGISTRY.get_sample_value("layra_search_latency_seconds_count") == before + 1
