"""Thin API of upload batches and the user's ingestion jobs: batch totals, the job list, a retry."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from knowledge import selectors
from knowledge.api.views import TaskOutputSerializer
from knowledge.batches import STATE_FILTERS, TOTALS, ingestion_job_list, ingestion_job_retry, upload_batch_status
from layra.openapi import errors
from layra.pagination import PAGE_PARAMETERS, page_response, paginated


class BatchFileSerializer(serializers.Serializer):
    file_id = serializers.CharField()
    filename = serializers.CharField(allow_blank=True)
    task_id = serializers.CharField(allow_null=True)
    state = serializers.CharField(help_text="The job's state (queued, converting, rendering, embedding, indexing, "
                                            "completed, failed, cancelled), or `deleted`.")
    pages_total = serializers.IntegerField()
    pages_done = serializers.IntegerField()
    error = serializers.CharField(allow_blank=True)
    deduplicated = serializers.BooleanField(help_text="The KB already had this content: the existing file.")


class UploadBatchOutputSerializer(serializers.Serializer):
    batch_id = serializers.CharField()
    knowledge_base_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    total = serializers.IntegerField(help_text="Files in the upload.")
    queued = serializers.IntegerField()
    running = serializers.IntegerField(help_text="Converting, rendering, embedding or indexing.")
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    files = BatchFileSerializer(many=True)


class UploadBatchApi(APIView):
    @extend_schema(summary="An upload's totals and each file's state", responses={200: UploadBatchOutputSerializer},
                   description=f"Totals by state ({', '.join(TOTALS)}) of the files one upload sent.")
    def get(self, request, batch_id: str):
        return Response(UploadBatchOutputSerializer(upload_batch_status(user=request.user, batch_id=batch_id)).data)


class TaskListApi(APIView):
    @extend_schema(summary="Your ingestion jobs, newest first", responses={200: paginated(TaskOutputSerializer)},
                   operation_id="tasks_list", parameters=[
                       OpenApiParameter("state", str, enum=sorted(STATE_FILTERS),
                                        description="A job state, or `running` for any running one."),
                       OpenApiParameter("knowledge_base_id", str, description="Jobs of this knowledge base only."),
                       *PAGE_PARAMETERS])
    def get(self, request):
        jobs = ingestion_job_list(user=request.user, state=request.query_params.get("state"),
                                  knowledge_base_id=request.query_params.get("knowledge_base_id"))
        return page_response(request=request, view=self, items=jobs, serializer=TaskOutputSerializer,
                             to_item=selectors.ingestion_job_to_dict)


class TaskRetryApi(APIView):
    @extend_schema(summary="Run a failed ingestion job again", request=None,
                   responses={200: TaskOutputSerializer, **errors(409)},
                   description="409 `not_failed` unless the job failed; its file is ingested again from the start.")
    def post(self, request, task_id: str):
        job = ingestion_job_retry(user=request.user, task_id=task_id)
        return Response(TaskOutputSerializer(selectors.ingestion_job_to_dict(job)).data)
