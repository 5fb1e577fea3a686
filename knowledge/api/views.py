"""Thin knowledge API: validate the input, call one service or selector, serialize the result."""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.ratelimit import rate_limit
from knowledge import selectors, services
from knowledge.batches import files_upload_batch
from knowledge.signing import SIZES, signed_user_id
from knowledge.versions import file_versions, version_to_dict
from layra.client_ip import client_ip
from layra.errors import NotFound
from layra.openapi import errors, event_stream, moved_to_trash
from layra.pagination import PAGE_PARAMETERS, page_response, paginated
from layra.sse import EventStreamRenderer, sse_event, sse_response
from layra.storage import presigned_url


class KnowledgeBaseOutputSerializer(serializers.Serializer):
    knowledge_base_id = serializers.CharField()
    knowledge_base_name = serializers.CharField()
    is_temp = serializers.BooleanField()
    version = serializers.IntegerField()
    embedder = serializers.CharField(allow_null=True)
    file_count = serializers.IntegerField()
    page_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    last_modify_at = serializers.DateTimeField()


class KnowledgeBaseInputSerializer(serializers.Serializer):
    knowledge_base_name = serializers.CharField(max_length=200)


class FileOutputSerializer(serializers.Serializer):
    file_id = serializers.CharField()
    knowledge_db_id = serializers.CharField()
    filename = serializers.CharField()
    content_type = serializers.CharField(allow_null=True)
    kind = serializers.CharField(allow_null=True)
    size = serializers.IntegerField(allow_null=True)
    sha256 = serializers.CharField(allow_null=True)
    status = serializers.CharField()
    error = serializers.CharField(allow_null=True)
    task_id = serializers.CharField(allow_null=True)
    page_count = serializers.IntegerField()
    document_id = serializers.SerializerMethodField(help_text="Shared by every version of the file (its own id for "
                                                              "a file uploaded once).")
    version = serializers.IntegerField(default=1, help_text="1, 2, ...: a re-upload of the name is the next version.")
    replaces = serializers.CharField(allow_null=True, default=None,
                                     help_text="A new version still being ingested: the file it replaces when it "
                                               "completes (until then search answers from that one).")
    created_at = serializers.DateTimeField()

    def get_document_id(self, file) -> str:
        return file.document_id or file.file_id


class FileVersionOutputSerializer(serializers.Serializer):
    file_id = serializers.CharField()
    document_id = serializers.CharField()
    version = serializers.IntegerField()
    filename = serializers.CharField()
    status = serializers.CharField()
    sha256 = serializers.CharField(allow_null=True)
    size = serializers.IntegerField(allow_null=True)
    current = serializers.BooleanField(help_text="The version search answers from (or will: a first upload being "
                                                 "ingested).")
    in_trash = serializers.BooleanField(help_text="A replaced or deleted version: restore it with "
                                                  "POST trash/file/{file_id}/restore/.")
    deleted_at = serializers.DateTimeField(allow_null=True)
    replaces = serializers.CharField(allow_null=True)
    replaced_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class TaskOutputSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    file_id = serializers.CharField()
    knowledge_base_id = serializers.CharField()
    filename = serializers.CharField(allow_blank=True)
    batch_id = serializers.CharField(allow_null=True, help_text="The upload batch that queued the job, if any.")
    state = serializers.CharField()
    pages_total = serializers.IntegerField()
    pages_done = serializers.IntegerField()
    attempts = serializers.IntegerField()
    error = serializers.CharField(allow_blank=True)
    processed = serializers.IntegerField(help_text="Page steps done (each page is rendered, then embedded).")
    total = serializers.IntegerField(help_text="Page steps in all: twice the page count.")
    message = serializers.CharField(allow_blank=True)
    eta_seconds = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


def _kb_out(kb, counts) -> dict:
    files, pages = counts.get(kb.knowledge_base_id, (0, 0))
    return selectors.knowledge_base_to_dict(kb, files=files, pages=pages)


class KnowledgeBaseListCreateApi(APIView):
    @extend_schema(summary="List your knowledge bases",
                   parameters=[OpenApiParameter("name", str, description="Filter: name contains (any case)."),
                               *PAGE_PARAMETERS],
                   responses={200: paginated(KnowledgeBaseOutputSerializer)}, operation_id="knowledge_bases_list")
    def get(self, request):
        kbs = selectors.knowledge_base_list(user=request.user, name=request.query_params.get("name"))
        return page_response(request=request, view=self, items=kbs, serializer=KnowledgeBaseOutputSerializer)

    @extend_schema(summary="Create a knowledge base", request=KnowledgeBaseInputSerializer,
                   responses={201: KnowledgeBaseOutputSerializer})
    def post(self, request):
        data = KnowledgeBaseInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        kb = services.knowledge_base_create(user=request.user, name=data.validated_data["knowledge_base_name"])
        return Response(KnowledgeBaseOutputSerializer(_kb_out(kb, {})).data, status=status.HTTP_201_CREATED)


class KnowledgeBaseDetailApi(APIView):
    @extend_schema(summary="One knowledge base with its file and page counts",
                   responses={200: KnowledgeBaseOutputSerializer})
    def get(self, request, knowledge_base_id: str):
        data = selectors.knowledge_base_detail(user=request.user, knowledge_base_id=knowledge_base_id)
        return Response(KnowledgeBaseOutputSerializer(data).data)

    @extend_schema(summary="Rename a knowledge base", request=KnowledgeBaseInputSerializer,
                   responses={200: KnowledgeBaseOutputSerializer})
    def patch(self, request, knowledge_base_id: str):
        data = KnowledgeBaseInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.knowledge_base_rename(user=request.user, knowledge_base_id=knowledge_base_id,
                                       name=data.validated_data["knowledge_base_name"])
        detail = selectors.knowledge_base_detail(user=request.user, knowledge_base_id=knowledge_base_id)
        return Response(KnowledgeBaseOutputSerializer(detail).data)

    @extend_schema(summary="Move a knowledge base to the trash with its files", responses=moved_to_trash(),
                   description="It disappears from lists, search and chat at once; its files, pages and vectors "
                               "are kept until it is purged (DELETE trash/knowledge_base/{id}/, or the nightly "
                               "cleanup after TRASH_RETENTION_DAYS). POST trash/knowledge_base/{id}/restore/ "
                               "brings it back.")
    def delete(self, request, knowledge_base_id: str):
        services.knowledge_base_delete(user=request.user, knowledge_base_id=knowledge_base_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FileUploadedSerializer(FileOutputSerializer):
    batch_id = serializers.CharField(help_text="The upload's batch: `GET uploads/{batch_id}/` gives its totals.")


class FileListUploadApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    class UploadInputSerializer(serializers.Serializer):
        files = serializers.ListField(child=serializers.FileField(), help_text="One or many files.")
        keep_both = serializers.BooleanField(
            required=False, default=False,
            help_text="A file named like one the knowledge base has, with other content, is that file's next "
                      "version (it replaces it once ingested) unless this is true: then both are kept as separate "
                      "files. Identical content is never stored twice.")

    @extend_schema(summary="List the files of a knowledge base", responses={200: paginated(FileOutputSerializer)},
                   operation_id="knowledge_base_files_list", parameters=PAGE_PARAMETERS)
    def get(self, request, knowledge_base_id: str):
        files = selectors.file_list(user=request.user, knowledge_base_id=knowledge_base_id)
        return page_response(request=request, view=self, items=files, serializer=FileOutputSerializer)

    @extend_schema(summary="Upload files into a knowledge base (ingestion starts)",
                   request={"multipart/form-data": UploadInputSerializer},
                   parameters=[OpenApiParameter("keep_both", bool, description="As the form field keep_both.")],
                   responses={201: FileUploadedSerializer(many=True), **errors(413, 415)},
                   description="Every file of the answer carries the upload's `batch_id` (also in the `Location` "
                               "header: `uploads/{batch_id}/`, the batch's totals and each file's state). Content "
                               "the knowledge base already has is answered with the existing file; other content "
                               "under a name it already has is that file's next version, unless `keep_both`.")
    def post(self, request, knowledge_base_id: str):
        rate_limit(request=request, scope="upload")
        keep_both = serializers.BooleanField().to_internal_value(
            request.query_params.get("keep_both", request.data.get("keep_both", False)))
        batch, files = files_upload_batch(user=request.user, knowledge_base_id=knowledge_base_id,
                                          uploaded_files=request.FILES.getlist("files"), ip=client_ip(request),
                                          keep_both=keep_both)
        for file in files:
            file.batch_id = batch.batch_id
        response = Response(FileUploadedSerializer(files, many=True).data, status=status.HTTP_201_CREATED)
        response["Location"] = f"/api/v1/uploads/{batch.batch_id}/"
        return response


class FileDetailApi(APIView):
    @extend_schema(summary="One file and its ingestion state", responses={200: FileOutputSerializer})
    def get(self, request, file_id: str):
        return Response(FileOutputSerializer(selectors.file_get(user=request.user, file_id=file_id)).data)

    @extend_schema(summary="Move a file to the trash", responses=moved_to_trash(),
                   description="It disappears from lists, search and chat at once; its pages and vectors are kept "
                               "until it is purged (DELETE trash/file/{id}/, or the nightly cleanup after "
                               "TRASH_RETENTION_DAYS). POST trash/file/{id}/restore/ brings it back.")
    def delete(self, request, file_id: str):
        services.file_delete(user=request.user, file_id=file_id, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class FileVersionsApi(APIView):
    @extend_schema(summary="The versions of a file (its document's files, live or in the trash)",
                   parameters=PAGE_PARAMETERS, responses={200: paginated(FileVersionOutputSerializer)},
                   operation_id="file_versions_list")
    def get(self, request, file_id: str):
        files = file_versions(user=request.user, file_id=file_id)
        return page_response(request=request, view=self, items=files, serializer=FileVersionOutputSerializer,
                             to_item=version_to_dict)


def _binary(data: bytes, content_type: str, filename: str | None = None) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    if filename is not None:
        from django.utils.http import content_disposition_header

        response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


class FileDownloadApi(APIView):
    @extend_schema(summary="Download a file's original bytes (or a presigned URL)",
                   responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
                   parameters=[OpenApiParameter("redirect", bool, description="Answer a presigned URL (S3 only).")])
    def get(self, request, file_id: str):
        if request.query_params.get("redirect") in ("1", "true"):
            file = selectors.file_get(user=request.user, file_id=file_id)
            url = presigned_url(file.minio_filename)
            if url:
                return Response({"url": url, "expires_in": 3600})
        file, data = selectors.file_content(user=request.user, file_id=file_id)
        return _binary(data, file.content_type or "application/octet-stream", file.filename)


class PageImageApi(APIView):
    """A page image for an authenticated caller, or for anyone holding a signed URL from a search hit."""

    permission_classes = [AllowAny]

    @extend_schema(summary="A page image (JPEG), by login or by a search hit's signed URL",
                   responses={(200, "image/jpeg"): OpenApiTypes.BINARY, **errors(401)}, parameters=[
        OpenApiParameter("size", str, enum=list(SIZES), description="full (default) or thumb"),
        OpenApiParameter("uid", int), OpenApiParameter("exp", int),
        OpenApiParameter("sig", str, description="signature of a search hit's image_url (no header needed)")])
    def get(self, request, file_id: str, page_number: int):
        user = request.user
        if "sig" in request.query_params:
            user_id = signed_user_id(file_id=file_id, page_number=page_number, params=request.query_params)
            if user_id is None:
                raise NotFound("Page not found.")  # a wrong or expired signature looks like a missing page
            user = User.objects.filter(pk=user_id, is_active=True).first()
            if user is None:
                raise NotFound("Page not found.")
        elif user is None or not user.is_authenticated:
            raise NotAuthenticated()
        _file, page = selectors.file_page(user=user, file_id=file_id, page_number=page_number)
        if request.query_params.get("size") == "thumb":
            return _binary(selectors.page_thumbnail_data(page), "image/jpeg")
        return _binary(selectors.page_image_data(page), "image/jpeg")


class TaskDetailApi(APIView):
    @extend_schema(summary="An ingestion task's progress", responses={200: TaskOutputSerializer})
    def get(self, request, task_id: str):
        return Response(TaskOutputSerializer(selectors.ingestion_job_status(user=request.user, task_id=task_id)).data)


class TaskEventsApi(APIView):
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(summary="Stream an ingestion task's progress (server-sent events)",
                   responses={(200, "text/event-stream"): event_stream(["progress", "end", "timeout"],
                                                                       "A TaskOutput JSON.")},
                   description="Server-sent events (`text/event-stream`). Event types: `progress` (data: a TaskOutput "
                               "JSON, with eta_seconds) after each change, then `end` (data: the final TaskOutput) "
                               "when the task is done, failed or cancelled, or `timeout` (data: the last TaskOutput) "
                               "when KNOWLEDGE_SSE_MAX_SECONDS pass first. Comment lines keep the stream open.")
    def get(self, request, task_id: str):
        events = selectors.ingestion_job_events(user=request.user, task_id=task_id)
        first = next(events)  # ownership is checked before the stream opens (404 otherwise)

        def stream():
            yield sse_event(first[0], TaskOutputSerializer(first[1]).data)
            for name, data in events:
                yield sse_event(name, TaskOutputSerializer(data).data)

        return sse_response(stream())


class TaskCancelApi(APIView):
    @extend_schema(summary="Cancel an ingestion task (a finished one is unchanged)", request=None,
                   responses={200: TaskOutputSerializer})
    def post(self, request, task_id: str):
        job = services.ingestion_job_cancel(user=request.user, task_id=task_id)
        return Response(TaskOutputSerializer(selectors.ingestion_job_to_dict(job)).data)


