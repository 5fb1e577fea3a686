"""Beat tasks of the operators (queue "default"): nightly cleanup, stuck-job detection, the scheduled backup."""

import logging

from celery import shared_task

from knowledge.jobs import stuck_jobs_handle
from operations.account_deletion import account_delete_run
from operations.backup_schedule import backup_scheduled
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


@shared_task(name="operations.scheduled_backup", acks_late=True, time_limit=6 * 3600, soft_time_limit=6 * 3600 - 60)
def scheduled_backup() -> dict:
    result = backup_scheduled()
    logger.info("scheduled backup", extra={"backup": result})
    return result


@shared_task(name="operations.account_delete", acks_late=True, time_limit=6 * 3600, soft_time_limit=6 * 3600 - 60)
def account_delete(deletion_id: int) -> dict:
    """Enqueued by accounts.deletion by name (accounts cannot import operations)."""
    deletion = account_delete_run(deletion_id=deletion_id)
    return {"state": deletion.state if deletion else "missing"}
