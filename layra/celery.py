"""The one Celery app. Queues: default, ingest (CPU conversion), gpu (page embedding), gpu_query (query embedding)."""

import os
import time

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun, worker_process_init
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "layra.settings")

app = Celery("layra")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("ingest"), Queue("gpu"), Queue("gpu_query"))
app.autodiscover_tasks()


# The handlers import at call time: this module is imported by layra/__init__.py before Django's settings are
# set up, and the modules they use read the settings at import.
@worker_process_init.connect
def _reconnect_after_fork(**_kwargs):
    # Clients made before the fork must not be shared with the parent.
    from layra import connections

    connections.reset_all()


@before_task_publish.connect
def _carry_request_id(headers=None, **_kwargs):
    from layra.logging import request_id_var

    if headers is not None and "request_id" not in headers:
        headers["request_id"] = request_id_var.get()


@task_prerun.connect
def _restore_request_id(task=None, **_kwargs):
    from layra.logging import request_id_var

    request_id = getattr(task.request, "request_id", None) or "-"
    request_id_var.set(request_id)
    task.request.layra_started = time.perf_counter()


@task_postrun.connect
def _count_task(task=None, state=None, **_kwargs):
    """Each run's outcome and duration per task and queue, for /metrics (layra.metrics)."""
    from layra.metrics import celery_task_observe

    started = getattr(task.request, "layra_started", None)
    if started is None or state is None:
        return
    queue = (task.request.delivery_info or {}).get("routing_key") or "-"
    celery_task_observe(task=task.name, queue=queue, state=state, seconds=time.perf_counter() - started)
