"""Thin Celery tasks: execute a run (idempotent via an atomic claim), check for stuck runs."""

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from . import engine, services
from .documents import RunStatus
from .enqueue import RUN_EXECUTE_TASK


@shared_task(name=RUN_EXECUTE_TASK, acks_late=True,
             time_limit=settings.WORKFLOW_MAX_RUN_SECONDS + 120, soft_time_limit=settings.WORKFLOW_MAX_RUN_SECONDS + 60)
def workflow_run_execute(run_id: str) -> str | None:
    try:
        return engine.run_execute(run_id=run_id)
    except SoftTimeLimitExceeded:
        services.run_fail_over_time_limit(run_id=run_id)
        return RunStatus.FAILED
    finally:
        services.chatflow_turn_record(run_id=run_id)  # a chatflow message's run: its turn, once


@shared_task(name="workflows.runs_check_stuck", acks_late=True, time_limit=300)
def workflows_runs_check_stuck() -> dict:
    return services.runs_check_stuck()
