"""Thin Celery tasks: execute a run (idempotent via an atomic claim), check for stuck runs."""

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from . import engine, services


@shared_task(name="workflows.run_execute", queue="default", acks_late=True,
             time_limit=settings.WORKFLOW_MAX_RUN_SECONDS + 120, soft_time_limit=settings.WORKFLOW_MAX_RUN_SECONDS + 60)
def workflow_run_execute(run_id: str) -> str | None:
    try:
        return engine.run_execute(run_id=run_id)
    except SoftTimeLimitExceeded:
        from .documents import WorkflowRun
        from .events import event_emit

        WorkflowRun.objects(run_id=run_id, status="running").update_one(
            set__status="failed", set__error={"message": "Run exceeded its time limit."})
        event_emit(run_id=run_id, event="run_finished",
                   data={"status": "failed", "error": {"message": "Run exceeded its time limit."}})
        return "failed"


@shared_task(name="workflows.runs_check_stuck", queue="default", acks_late=True, time_limit=300)
def workflows_runs_check_stuck() -> dict:
    return services.runs_check_stuck()
