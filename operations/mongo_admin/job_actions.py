"""Retry / cancel actions added to the knowledge app's IngestionJob admin (without editing that app)."""

from django.contrib import admin, messages

from knowledge.jobs import job_cancel, job_retry
from knowledge.models import IngestionJob
from layra.errors import DomainError


def _each_job(modeladmin, request, queryset, action, verb: str) -> None:
    """Apply a job service to each selected job; refusals are reported per job, the rest still run."""
    done = 0
    for job in queryset:
        try:
            action(job=job)
            done += 1
        except DomainError as exc:
            modeladmin.message_user(request, f"{job.task_id}: {exc.message}", messages.WARNING)
    modeladmin.message_user(request, f"{done} job(s) {verb}")


@admin.action(description="Retry selected failed/cancelled jobs")
def retry_jobs(modeladmin, request, queryset):
    _each_job(modeladmin, request, queryset, job_retry, "requeued")


@admin.action(description="Cancel selected jobs")
def cancel_jobs(modeladmin, request, queryset):
    _each_job(modeladmin, request, queryset, job_cancel, "cancelled")


def install() -> None:
    model_admin = admin.site._registry.get(IngestionJob)
    if model_admin is not None:
        model_admin.actions = [*(model_admin.actions or []), retry_jobs, cancel_jobs]
