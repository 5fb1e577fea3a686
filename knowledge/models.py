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
