"""Ingestion jobs (MySQL): one per uploaded file, visible to operators in the admin."""

from django.conf import settings
from django.db import models

from layra.ids import new_id


class IngestionJob(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued"
        CONVERTING = "converting"
        RENDERING = "rendering"
        EMBEDDING = "embedding"
        INDEXING = "indexing"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    TERMINAL = (State.COMPLETED, State.FAILED, State.CANCELLED)

    task_id = models.CharField(max_length=36, unique=True, default=new_id, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ingestion_jobs")
    knowledge_base_id = models.CharField(max_length=36, db_index=True)
    file_id = models.CharField(max_length=36, db_index=True)
    filename = models.CharField(max_length=255, blank=True)
    batch_id = models.CharField(max_length=36, blank=True, default="", db_index=True,
                                help_text="The upload (UploadBatch) that queued this job; empty for others.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    pages_total = models.PositiveIntegerField(default=0)
    pages_done = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    stage_seconds = models.JSONField(default=dict, blank=True)  # convert, render, load, embed, index
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.filename or self.file_id} ({self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.state in self.TERMINAL


class UploadBatch(models.Model):
    """One multi-file upload: the files it named (new ones have a job with this batch_id; content the KB already
    had names the existing file), for `GET uploads/{batch_id}/`."""

    batch_id = models.CharField(max_length=36, unique=True, default=new_id, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="upload_batches")
    knowledge_base_id = models.CharField(max_length=36, db_index=True)
    file_ids = models.JSONField(default=list, help_text="The upload's files, in the order they were sent.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"batch {self.batch_id} ({len(self.file_ids)} files)"
