"""Search filters: which files a search may answer from, by id, name or upload date.

DECISIONS (Lifecycle): filters by filename or date are resolved to `file_id in [...]` from Mongo before the
vector and lexical searches, which apply it as a scalar filter inside the search (never after top-k); vector
rows get no new fields. Used by `POST search/`, chat turns and workflow retrieval nodes alike.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from rest_framework import serializers

from accounts.models import User
from knowledge.documents import File, FileStatus
from layra.errors import ValidationError

FIELDS = ("file_ids", "filename", "uploaded_after", "uploaded_before")


@dataclass(frozen=True)
class SearchFilters:
    file_ids: tuple[str, ...] | None = None  # these files only
    filename: str | None = None  # the file's name contains this (any case)
    uploaded_after: datetime | None = None  # uploaded at or after
    uploaded_before: datetime | None = None  # uploaded before

    @classmethod
    def of(cls, data: dict | None) -> "SearchFilters":
        """From validated input (a serializer's data, a node's checked data): absent or empty values filter
        nothing."""
        data = data or {}
        file_ids = data.get("file_ids")
        return cls(file_ids=tuple(dict.fromkeys(file_ids)) if file_ids is not None else None,
                   filename=(data.get("filename") or "").strip() or None,
                   uploaded_after=data.get("uploaded_after"), uploaded_before=data.get("uploaded_before"))

    @property
    def active(self) -> bool:
        return any(value is not None for value in (self.file_ids, self.filename, self.uploaded_after,
                                                   self.uploaded_before))


def search_filter_file_ids(*, user: User, knowledge_base_ids: list[str], filters: SearchFilters) -> list[str] | None:
    """The ids of the user's searchable files in these KBs that pass the filters, in a stable order (None: no
    filter, every file). Another user's or a deleted file's id passes nothing, as a missing one."""
    if not filters.active:
        return None
    query = {"username": user.username, "knowledge_db_id__in": knowledge_base_ids, "is_delete": False,
             "status": FileStatus.COMPLETED.value}
    if filters.file_ids is not None:
        query["file_id__in"] = list(filters.file_ids)
    if filters.filename:
        query["filename__icontains"] = filters.filename
    if filters.uploaded_after is not None:
        query["created_at__gte"] = filters.uploaded_after
    if filters.uploaded_before is not None:
        query["created_at__lt"] = filters.uploaded_before
    limit = settings.SEARCH_FILTER_MAX_FILES
    file_ids = sorted(File.objects(**query).limit(limit + 1).scalar("file_id"))
    if len(file_ids) > limit:
        raise ValidationError(f"The filters match more than {limit} files; narrow them.", code="filter_too_wide")
    return file_ids


class SearchFiltersSerializer(serializers.Serializer):
    """The filter fields of a search, a chat turn (and, as plain JSON, a retrieval node's data)."""

    file_ids = serializers.ListField(child=serializers.CharField(max_length=64), required=False, allow_null=True,
                                     max_length=1000, help_text="Only pages of these files.")
    filename = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255,
                                     help_text="Only files whose name contains this (any case).")
    uploaded_after = serializers.DateTimeField(required=False, allow_null=True,
                                               help_text="Only files uploaded at or after this time (ISO 8601).")
    uploaded_before = serializers.DateTimeField(required=False, allow_null=True,
                                                help_text="Only files uploaded before this time (ISO 8601).")

    def validate(self, attrs):
        after, before = attrs.get("uploaded_after"), attrs.get("uploaded_before")
        if after is not None and before is not None and after >= before:
            raise serializers.ValidationError({"uploaded_before": ["Must be later than uploaded_after."]})
        return attrs


def search_filters_parse(data: dict) -> SearchFilters:
    """SearchFilters from plain JSON (a workflow node's data): ValidationError naming the bad field."""
    checked = SearchFiltersSerializer(data={k: data[k] for k in FIELDS if k in data})
    if not checked.is_valid():
        raise ValidationError("Invalid search filters.", details=checked.errors)
    return SearchFilters.of(checked.validated_data)
