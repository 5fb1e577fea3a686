"""The request id of a web request follows it into the tasks it enqueues (JSON log records of the worker)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from knowledge.models import IngestionJob
from tests.waiting import eventually


@pytest.mark.django_db(transaction=True)
def test_request_id_reaches_task_log_record(celery_worker, user):
    from layra.logging import request_id_var
    from operations.tasks import stuck_jobs

    IngestionJob.objects.create(user=user, knowledge_base_id="kb", file_id="f-missing", filename="x.txt",
                                state="rendering", stage_seconds={"requeued": 1})
    IngestionJob.objects.update(updated_at=timezone.now() - timedelta(hours=2))
    token = request_id_var.set("req-ops-4242")
    try:
        stuck_jobs.delay()
    finally:
        request_id_var.reset(token)
    records = eventually(lambda: [json.loads(line) for line in celery_worker.log().splitlines()
                                  if line.startswith("{") and "stuck job" in line],
                         interval=0.3, context=lambda: celery_worker.log()[-3000:])
    assert records[0]["request_id"] == "req-ops-4242"
