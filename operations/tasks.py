"""Beat tasks of the operators (queue "default"): nightly cleanup and stuck-job detection."""

import logging

from celery import shared_task

from knowledge.jobs import stuck_jobs_handle
from operations.cleanup import cleanup_run

logger = logging.getLogger(__name__)


@shared_task(name="operations.nightly_cleanup", acks_late=True, time_limit=3600, soft_time_limit=3540)
def nightly_cleanup() -> dict:
    result = cleanup_run()
    logger.info("nightly cleanup", extra={"cleanup": result})
    return result


@shared_task(name="operations.stuck_jobs", acks_late=True, time_limit=300, soft_time_limit=270)
def stuck_jobs() -> dict:
    return stuck_jobs_handle()
