"""Retry / cancel actions added to the knowledge app's IngestionJob admin (without editing that app)."""

from django.contrib import admin, messages

from layra.errors import DomainError


@admin.action(description="Retry selected failed/cancelled jobs")
def retry_jobs(modeladmin, request, queryset):
    from layra.ops.jobs import job_retry

    done = 0
    for job in queryset:
        try:
            job_retry(job=job)
            done += 1
        except DomainError as exc:
            modeladmin.message_user(request, f"{job.task_id}: {exc.message}", messages.WARNING)
    modeladmin.message_user(request, f"{done} job(s) requeued")


@admin.action(description="Cancel selected jobs")
def cancel_jobs(modeladmin, request, queryset):
    from layra.ops.jobs import job_cancel

    done = 0
    for job in queryset:
        try:
            job_cancel(job=job)
            done += 1
        except DomainError as exc:
            modeladmin.message_user(request, f"{job.task_id}: {exc.message}", messages.WARNING)
    modeladmin.message_user(request, f"{done} job(s) cancelled")


def install() -> None:
    from knowledge.models import IngestionJob

    model_admin = admin.site._registry.get(IngestionJob)
    if model_admin is not None:
        model_admin.actions = [*(model_admin.actions or []), retry_jobs, cancel_jobs]
