"""Enqueue a run's execution by task name, so services need not import tasks (tasks import services)."""

from celery import current_app
from django.db import transaction

RUN_EXECUTE_TASK = "workflows.run_execute"


def run_enqueue(run_id: str) -> None:
    """Send the run to a worker now (in eager mode, the task runs here, before this returns)."""
    # A signature by name resolves to the registered task, so task_always_eager is honoured (send_task is not).
    current_app.signature(RUN_EXECUTE_TASK, args=(run_id,)).delay()


def run_enqueue_on_commit(run_id: str) -> None:
    """Send the run once the caller's database transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: run_enqueue(run_id))
