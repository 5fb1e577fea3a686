"""OpenAI-compatible chat completions over the caller's knowledge bases: POST chat/completions and GET models under
/api/v1/openai/, so that any OpenAI client (base_url=<server>/api/v1/openai, api_key=lyr_...) works unchanged.

OpenAI's shapes here (DECISIONS: exempt from the trailing-slash and pagination conventions): its list object, its
error object (errors.py), its completion and chunk objects. What OpenAI has no field for rides in extra fields
that OpenAI clients ignore: `citations` (the shared hit fields) on the message, or on the final chunk of a
stream, and `usage_estimated` when the model endpoint reported no usage and the counts are estimates."""

import json

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.ratelimit import rate_limit
from chat import selectors
from chat.completion import ROLES, Completion, completion_collect, completion_start
from chat.openai_api.errors import OpenAIErrorSerializer, exception_handler, openai_error
from chat.openai_api.schema import OpenAIAutoSchema

ERRORS = {status: OpenApiResponse(OpenAIErrorSerializer, description=text) for status, text in {
    400: "Invalid request (OpenAI's error shape).", 401: "No or an invalid API key.",
    404: "No such model or knowledge base.", 429: "Rate limited.", 502: "The model endpoint failed.",
    503: "A backing store is unavailable."}.items()}


class OpenAIApiView(APIView):
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]
    schema = OpenAIAutoSchema()

    def get_exception_handler(self):
        return exception_handler


class OpenAICitationSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The number the model was asked to cite the page by ([1], [2]...)")
    knowledge_base_id = serializers.CharField()
    file_id = serializers.CharField()
    filename = serializers.CharField()
    image_id = serializers.CharField()
    page_number = serializers.IntegerField()
    score = serializers.FloatField()
    snippet = serializers.CharField(allow_blank=True)
    image_url = serializers.CharField(help_text="Signed same-origin URL of the page image (short-lived)")
    thumbnail_url = serializers.CharField()


class OpenAIUsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class OpenAIModelSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The model config id (use it, or a unique model_name, as `model`)")
    object = serializers.CharField(default="model")
    created = serializers.IntegerField()
    owned_by = serializers.CharField()
    model_name = serializers.CharField()
    knowledge_base_ids = serializers.ListField(child=serializers.CharField(),
                                               help_text="Searched when a request names no knowledge_base_ids")


def _model_object(entry) -> dict:
    return {"id": entry.model_id, "object": "model", "created": int(entry.created_at.timestamp()),
            "owned_by": "user", "model_name": entry.model_name, "knowledge_base_ids": list(entry.base_used or [])}


class ModelListApi(OpenAIApiView):
    class OpenAIModelListSerializer(serializers.Serializer):
        object = serializers.CharField(default="list")
        data = OpenAIModelSerializer(many=True)

    @extend_schema(summary="OpenAI-compatible: your model configs as OpenAI models", operation_id="openai_models",
                   responses={200: OpenAIModelListSerializer, **ERRORS})
    def get(self, request):
        models, _selected = selectors.model_list(user=request.user)
        return Response({"object": "list", "data": [_model_object(entry) for entry in models]})


class ModelDetailApi(OpenAIApiView):
    @extend_schema(summary="OpenAI-compatible: one model config as an OpenAI model",
                   operation_id="openai_model", responses={200: OpenAIModelSerializer, **ERRORS})
    def get(self, request, model_id: str):
        return Response(_model_object(selectors.model_get(user=request.user, model_id=model_id)))


class OpenAIMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=ROLES)
    content = serializers.JSONField(help_text="A string, or a list of parts ({type: text|image_url, ...})")
    name = serializers.CharField(required=False)

    def validate_content(self, value):
        if value is None or isinstance(value, str):
            return value or ""
        if not isinstance(value, list) or not all(isinstance(p, dict) and isinstance(p.get("type"), str)
                                                  for p in value):
            raise serializers.ValidationError("Content is a string or a list of parts with a `type`.")
        return value


class ChatCompletionApi(OpenAIApiView):
    class OpenAIChatCompletionInputSerializer(serializers.Serializer):
        model = serializers.CharField(max_length=200, help_text="A model config id, or a unique model_name")
        messages = OpenAIMessageSerializer(many=True, allow_empty=False, max_length=1000)
        stream = serializers.BooleanField(default=False)
        stream_options = serializers.DictField(required=False, allow_null=True)
        knowledge_base_ids = serializers.ListField(
            child=serializers.CharField(max_length=64), required=False, allow_null=True, max_length=50,
            help_text="Extra field: the knowledge bases to search (default: the model config's; [] for none)")
        temperature = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=2)
        top_p = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
        max_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=1)
        max_completion_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=1)

    class OpenAIChatCompletionSerializer(serializers.Serializer):
        class OpenAIChoiceSerializer(serializers.Serializer):
            class OpenAIAssistantMessageSerializer(serializers.Serializer):
                role = serializers.CharField(default="assistant")
                content = serializers.CharField(allow_blank=True)
                citations = OpenAICitationSerializer(many=True, help_text="Extra field: the pages the answer drew on")

            index = serializers.IntegerField()
            message = OpenAIAssistantMessageSerializer()
            finish_reason = serializers.CharField()

        id = serializers.CharField()
        object = serializers.CharField(default="chat.completion")
        created = serializers.IntegerField()
        model = serializers.CharField()
        choices = OpenAIChoiceSerializer(many=True)
        usage = OpenAIUsageSerializer()
        usage_estimated = serializers.BooleanField(help_text="Extra field: true when the model endpoint sent no "
                                                             "usage and the counts are estimates")

    @extend_schema(
        summary="OpenAI-compatible chat completion over your knowledge bases",
        operation_id="openai_chat_completions", request=OpenAIChatCompletionInputSerializer,
        responses={(200, "application/json"): OpenAIChatCompletionSerializer,
                   (200, "text/event-stream"): OpenApiResponse(
                       {"type": "string"}, description="With stream=true: `data: {chat.completion.chunk}` lines "
                                                       "ending with `data: [DONE]`."),
                   **ERRORS},
        description="The last user message is the question: pages are retrieved from `knowledge_base_ids` (an "
                    "extra body field; default: the model config's knowledge bases) and sent to the model with "
                    "it, as in a chat turn. Nothing is stored but an audit record. With `stream: true` the answer "
                    "streams as OpenAI chunks; the final chunk (finish_reason `stop`) carries the extra field "
                    "`citations`, and `usage` (or a separate usage chunk when stream_options.include_usage).",
    )
    def post(self, request):
        rate_limit(request=request, scope="chat")
        data = self.OpenAIChatCompletionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        body = data.validated_data
        completion = completion_start(
            user=request.user, messages=body["messages"], model=body["model"],
            knowledge_base_ids=body.get("knowledge_base_ids"), stream=body["stream"], source="openai",
            temperature=body.get("temperature"), top_p=body.get("top_p"),
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"))
        if body["stream"]:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            # Not layra.sse.sse_response: its opening comment line is not in OpenAI's framing (data lines only).
            response = StreamingHttpResponse(_chunks(completion, model=body["model"], include_usage=include_usage),
                                             content_type="text/event-stream")
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
            return response
        result = completion_collect(completion=completion)
        return Response({
            "id": completion.completion_id, "object": "chat.completion", "created": completion.created,
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": result["answer"],
                                     "citations": result["citations"]}}],
            "usage": result["usage"], "usage_estimated": result["usage_estimated"],
        })


def _data(payload) -> str:
    return f"data: {json.dumps(payload, default=str)}\n\n"


def _chunks(completion: Completion, *, model: str, include_usage: bool):
    """OpenAI's stream: a role chunk, a chunk per token, the final chunk, [DONE]. An error after the stream has
    opened is an `error` object in a data line, as OpenAI sends it (its SDK raises it), then [DONE]."""
    base = {"id": completion.completion_id, "object": "chat.completion.chunk", "created": completion.created,
            "model": model}

    def chunk(delta: dict, finish_reason: str | None = None, **extra) -> str:
        return _data({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                                           "logprobs": None}], **extra})

    try:
        yield chunk({"role": "assistant", "content": ""})
        for name, data in completion.events:
            if name == "keepalive":
                yield ": keepalive\n\n"
            elif name == "token":
                yield chunk({"content": data["text"]})
            elif name == "error":
                status = 500 if data.get("code") == "server_error" else 502
                yield _data(openai_error(status=status, code=data.get("code") or "model_error",
                                         message=data["message"]))
            elif name == "done":
                usage = {"usage": data["usage"], "usage_estimated": data["usage_estimated"]}
                yield chunk({}, "stop", citations=completion.citations, **({} if include_usage else usage))
                if include_usage:
                    yield _data({**base, "choices": [], **usage})
        yield "data: [DONE]\n\n"
    finally:
        completion.close()
