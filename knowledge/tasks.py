"""Thin, idempotent pipeline tasks: take ids, call the pipeline, enqueue the next step on commit."""

from celery import shared_task
from django.conf import settings
from django.db import transaction

from knowledge import pipeline, purge

_LIMITS = {"acks_late": True, "reject_on_worker_lost": True, "time_limit": settings.KNOWLEDGE_TASK_TIME_LIMIT,
           "soft_time_limit": settings.KNOWLEDGE_TASK_TIME_LIMIT - 60}


@shared_task(bind=True, name="knowledge.ingest_file", max_retries=60, **_LIMITS)
def ingest_file(self, job_id: int) -> None:
    try:
        follow = pipeline.ingest_run(job_id=job_id)
    except pipeline.Busy as exc:
        raise self.retry(exc=exc, countdown=5) from exc
    if follow:
        transaction.on_commit(lambda: embed_file.delay(job_id))


@shared_task(bind=True, name="knowledge.embed_file", max_retries=60, **_LIMITS)
def embed_file(self, job_id: int) -> None:
    try:
        pipeline.embed_run(job_id=job_id)
    except pipeline.Busy as exc:
        raise self.retry(exc=exc, countdown=5) from exc


@shared_task(name="knowledge.purge_file", acks_late=True, time_limit=600, soft_time_limit=540)
def purge_file(file_id: str) -> None:
    purge.file_purge(file_id=file_id)


@shared_task(name="knowledge.purge_knowledge_base", acks_late=True, time_limit=1800,
             soft_time_limit=1740)
def purge_knowledge_base(knowledge_base_id: str) -> None:
    purge.knowledge_base_purge(knowledge_base_id=knowledge_base_id)
