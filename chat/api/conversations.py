"""Conversation endpoints: conversations/, conversations/{id}/, .../messages (SSE or JSON), .../files."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.ratelimit import rate_limit
from chat import selectors, services
from chat.answer import answer_collect, message_ask
from chat.documents import TurnStatus
from knowledge.search_filters import FIELDS as FILTER_FIELDS
from knowledge.search_filters import SearchFilters, SearchFiltersSerializer
from layra.client_ip import client_ip
from layra.errors import ValidationError
from layra.openapi import errors, event_stream, moved_to_trash
from layra.pagination import PAGE_PARAMETERS, page_response, paginated
from layra.sse import EventStreamRenderer, sse_event, sse_response


class TurnOutputSerializer(serializers.Serializer):
    message_id = serializers.CharField()
    parent_message_id = serializers.CharField(allow_null=True)
    user_message = serializers.CharField()
    ai_message = serializers.CharField()
    model_id = serializers.CharField(allow_null=True)
    model_name = serializers.CharField()
    temp_db = serializers.CharField(allow_null=True)
    file_used = serializers.ListField(child=serializers.DictField())
    status = serializers.ChoiceField(choices=[status.value for status in TurnStatus])
    error = serializers.CharField(allow_null=True)
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_token = serializers.IntegerField()
    timestamp = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class ConversationOutputSerializer(serializers.Serializer):
    conversation_id = serializers.CharField()
    conversation_name = serializers.CharField()
    is_read = serializers.BooleanField()
    temp_db = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    last_modify_at = serializers.DateTimeField()


class ConversationDetailOutputSerializer(ConversationOutputSerializer):
    turns = TurnOutputSerializer(many=True)


class ConversationListCreateApi(APIView):
    class ConversationCreateInputSerializer(serializers.Serializer):
        conversation_name = serializers.CharField(max_length=200, required=False, allow_blank=True)

    @extend_schema(summary="List your conversations", responses=paginated(ConversationOutputSerializer),
                   operation_id="conversations_list", parameters=PAGE_PARAMETERS)
    def get(self, request):
        return page_response(request=request, view=self, items=selectors.conversation_list(user=request.user),
                             serializer=ConversationOutputSerializer)

    @extend_schema(summary="Start a conversation", request=ConversationCreateInputSerializer,
                   responses={201: ConversationDetailOutputSerializer})
    def post(self, request):
        data = self.ConversationCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = services.conversation_create(user=request.user, **data.validated_data)
        return Response(ConversationDetailOutputSerializer(conversation).data, status=201)


class ConversationDetailApi(APIView):
    class ConversationUpdateInputSerializer(serializers.Serializer):
        conversation_name = serializers.CharField(max_length=200, required=False)
        is_read = serializers.BooleanField(required=False)

    @extend_schema(summary="One conversation with all its turns", responses=ConversationDetailOutputSerializer)
    def get(self, request, conversation_id: str):
        conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
        return Response(ConversationDetailOutputSerializer(conversation).data)

    @extend_schema(summary="Rename a conversation or mark it read", request=ConversationUpdateInputSerializer,
                   responses=ConversationDetailOutputSerializer,
                   description="Rename (conversation_name) and/or mark read (is_read).")
    def patch(self, request, conversation_id: str):
        data = self.ConversationUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = services.conversation_update(user=request.user, conversation_id=conversation_id,
                                                    **data.validated_data)
        return Response(ConversationDetailOutputSerializer(conversation).data)

    @extend_schema(summary="Move a conversation to the trash", responses=moved_to_trash(),
                   description="The conversation and its temporary knowledge base go to the trash: hidden at once, "
                               "purged by DELETE trash/conversation/{id}/ or the nightly cleanup after "
                               "TRASH_RETENTION_DAYS; POST trash/conversation/{id}/restore/ brings both back.")
    def delete(self, request, conversation_id: str):
        services.conversation_delete(user=request.user, conversation_id=conversation_id)
        return Response(status=204)


def _sse(events):
    try:
        for name, data in events:
            yield ": keepalive\n\n" if name == "keepalive" else sse_event(name, data)
    finally:
        events.close()


class MessageApi(APIView):
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, EventStreamRenderer]

    class MessageInputSerializer(SearchFiltersSerializer):
        """The question, and optional search filters that narrow which files the answer's pages come from."""

        class Meta:
            ref_name = "MessageInput"

        question = serializers.CharField(max_length=100_000, allow_blank=True, trim_whitespace=True)
        parent_message_id = serializers.CharField(max_length=64, required=False, allow_null=True,
                                                  help_text="Absent: continue the latest turn; null: a new "
                                                            "first question. Give the parent of an earlier turn to "
                                                            "edit or regenerate it on a new branch.")
        model_id = serializers.CharField(max_length=64, required=False, allow_null=True,
                                         help_text="Default: the selected model.")
        knowledge_base_ids = serializers.ListField(
            child=serializers.CharField(max_length=64), required=False, max_length=50,
            help_text="Search these knowledge bases for this question instead of the model's saved ones "
                      "(`base_used`); the conversation's temporary one is searched either way.")

    class AnswerOutputSerializer(serializers.Serializer):
        conversation_id = serializers.CharField()
        message_id = serializers.CharField()
        parent_message_id = serializers.CharField(allow_null=True)
        status = serializers.CharField()
        answer = serializers.CharField()
        citations = serializers.ListField(child=serializers.DictField())
        usage = serializers.DictField(child=serializers.IntegerField())

    @extend_schema(
        summary="The turns of one branch of a conversation",
        parameters=[OpenApiParameter("leaf", str, description="Last turn of the branch (default: the latest)."),
                    *PAGE_PARAMETERS],
        responses=paginated(TurnOutputSerializer), operation_id="conversations_messages_list",
        description="The turns of one branch, from the first question down to `leaf`, a page at a time.",
    )
    def get(self, request, conversation_id: str):
        conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
        leaf = request.query_params.get("leaf") or selectors.conversation_leaf(conversation=conversation)
        turns = selectors.conversation_path(conversation=conversation, message_id=leaf)
        return page_response(request=request, view=self, items=turns, serializer=TurnOutputSerializer)

    @extend_schema(
        summary="Ask a question: the answer streams as server-sent events (or one JSON with stream=false)",
        request=MessageInputSerializer,
        parameters=[OpenApiParameter("stream", OpenApiTypes.BOOL, description="false: one JSON response.")],
        responses={
            (200, "application/json"): OpenApiResponse(
                AnswerOutputSerializer, description="With stream=false: the whole answer as JSON."),
            (200, "text/event-stream"): event_stream(["citations", "token", "done", "error"],
                                                     "The event's JSON (see the description)."),
            **errors(429, 502),
        },
        description="With stream=true (default) the answer is a `text/event-stream` with these event types: "
                    "`citations` (data: {conversation_id, message_id, citations: [file, page, score, image_url, "
                    "...]}) first; `token` (data: {text}) for each piece of the answer; then one final `done` "
                    "(data: {conversation_id, message_id, status, usage}) or `error` (data: {conversation_id, "
                    "message_id, status, message, code}). Comment lines keep the connection alive. With "
                    "stream=false the same answer is one JSON object; a model failure is then a 502 `model_error`.",
    )
    def post(self, request, conversation_id: str):
        rate_limit(request=request, scope="chat")
        data = self.MessageInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        stream = request.query_params.get("stream", "true").lower() not in ("false", "0", "no")
        fields = dict(data.validated_data)
        filters = SearchFilters.of({name: fields.pop(name, None) for name in FILTER_FIELDS})
        answer = message_ask(user=request.user, conversation_id=conversation_id, stream=stream, filters=filters,
                             **fields)
        if stream:
            return sse_response(_sse(answer.events))
        result = answer_collect(answer=answer)
        return Response(self.AnswerOutputSerializer(result).data)


class ConversationFilesApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    class ConversationFilesInputSerializer(serializers.Serializer):
        files = serializers.ListField(child=serializers.FileField())

    class ConversationFileOutputSerializer(serializers.Serializer):
        file_id = serializers.CharField()
        knowledge_db_id = serializers.CharField()
        filename = serializers.CharField()
        status = serializers.CharField()
        task_id = serializers.CharField(allow_null=True)

    @extend_schema(summary="Upload files into the conversation's temporary knowledge base",
                   request={"multipart/form-data": ConversationFilesInputSerializer},
                   responses={201: ConversationFileOutputSerializer(many=True), **errors(413, 415)},
                   description="Upload files into the conversation's temporary knowledge base (created on first "
                               "upload, searched with the model's KBs, deleted with the conversation).")
    def post(self, request, conversation_id: str):
        rate_limit(request=request, scope="upload")
        uploaded = request.FILES.getlist("files")
        if not uploaded:
            raise ValidationError("No files were sent; use multipart field `files`.",
                                  details={"files": ["This field is required."]})
        files = services.conversation_files_upload(user=request.user, conversation_id=conversation_id,
                                                   uploaded_files=uploaded, ip=client_ip(request))
        return Response(self.ConversationFileOutputSerializer(files, many=True).data, status=201)
