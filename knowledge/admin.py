from django.contrib import admin

from knowledge.models import IngestionJob


@admin.register(IngestionJob)
class IngestionJobAdmin(admin.ModelAdmin):
    list_display = ("task_id", "filename", "user", "state", "pages_done", "pages_total", "attempts", "created_at")
    list_filter = ("state",)
    search_fields = ("task_id", "file_id", "knowledge_base_id", "filename", "user__username")
    readonly_fields = ("task_id", "user", "knowledge_base_id", "file_id", "created_at", "updated_at",
                       "started_at", "finished_at")
    ordering = ("-created_at",)
