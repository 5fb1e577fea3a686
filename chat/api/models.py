"""Model config endpoints: models/, models/{id}/, models/{id}/test, models/selected."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from chat import selectors, services
from layra.openapi import errors
from layra.pagination import PAGE_PARAMETERS, page_response, paginated


class ModelInputSerializer(serializers.Serializer):
    model_name = serializers.CharField(max_length=200)
    model_url = serializers.CharField(max_length=2000)
    api_key = serializers.CharField(max_length=4000, required=False, allow_blank=True, trim_whitespace=True,
                                    help_text="Stored encrypted; never returned whole. Omit on update to keep it.")
    base_used = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=50)
    system_prompt = serializers.CharField(max_length=20000, required=False, allow_blank=True, trim_whitespace=False)
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False, allow_null=True)
    max_length = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, allow_null=True)
    top_P = serializers.FloatField(min_value=0, max_value=1, required=False, allow_null=True)
    top_K = serializers.IntegerField(min_value=1, max_value=20, required=False, allow_null=True)
    score_threshold = serializers.FloatField(required=False, allow_null=True)


class ModelCreateInputSerializer(ModelInputSerializer):
    select = serializers.BooleanField(required=False, default=False)


class ModelOutputSerializer(serializers.Serializer):
    model_id = serializers.CharField()
    model_name = serializers.CharField()
    model_url = serializers.CharField()
    api_key = serializers.CharField(source="api_key_hint", help_text="Masked, e.g. sk-...abcd")
    has_api_key = serializers.SerializerMethodField()
    base_used = serializers.ListField(child=serializers.CharField())
    system_prompt = serializers.CharField()
    temperature = serializers.FloatField(allow_null=True)
    max_length = serializers.IntegerField(allow_null=True)
    top_P = serializers.FloatField(allow_null=True)
    top_K = serializers.IntegerField()
    score_threshold = serializers.FloatField(allow_null=True)
    is_selected = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    last_modify_at = serializers.DateTimeField()

    def get_has_api_key(self, obj) -> bool:
        return bool(obj.api_key)

    def get_is_selected(self, obj) -> bool:
        return obj.model_id == self.context.get("selected_model")


def _out(entry, selected_model):
    return ModelOutputSerializer(entry, context={"selected_model": selected_model}).data


class ModelListCreateApi(APIView):
    @extend_schema(summary="List your model configurations", parameters=PAGE_PARAMETERS,
                   responses=paginated(ModelOutputSerializer), operation_id="models_list")
    def get(self, request):
        models, selected = selectors.model_list(user=request.user)
        return page_response(request=request, view=self, items=models, serializer=ModelOutputSerializer,
                             context={"selected_model": selected})

    @extend_schema(summary="Add a model configuration", request=ModelCreateInputSerializer,
                   responses={201: ModelOutputSerializer})
    def post(self, request):
        data = ModelCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        entry = services.model_create(user=request.user, **data.validated_data)
        _, selected = selectors.model_list(user=request.user)
        return Response(_out(entry, selected), status=201)


class ModelDetailApi(APIView):
    @extend_schema(summary="One model configuration (its API key masked)", responses=ModelOutputSerializer)
    def get(self, request, model_id: str):
        entry = selectors.model_get(user=request.user, model_id=model_id)
        _, selected = selectors.model_list(user=request.user)
        return Response(_out(entry, selected))

    @extend_schema(summary="Replace a model configuration", request=ModelInputSerializer,
                   responses=ModelOutputSerializer)
    def put(self, request, model_id: str):
        return self._update(request, model_id, partial=False)

    @extend_schema(summary="Update some fields of a model configuration", request=ModelInputSerializer(partial=True),
                   responses=ModelOutputSerializer)
    def patch(self, request, model_id: str):
        return self._update(request, model_id, partial=True)

    def _update(self, request, model_id: str, *, partial: bool):
        data = ModelInputSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        entry = services.model_update(user=request.user, model_id=model_id, **data.validated_data)
        _, selected = selectors.model_list(user=request.user)
        return Response(_out(entry, selected))

    @extend_schema(summary="Delete a model configuration", responses={204: None})
    def delete(self, request, model_id: str):
        services.model_delete(user=request.user, model_id=model_id)
        return Response(status=204)


class ModelTestApi(APIView):
    @extend_schema(
        summary="Test a model endpoint with a short prompt",
        request=None,
        responses={200: inline_serializer("ModelTestResult", {
            "ok": serializers.BooleanField(),
            "latency_ms": serializers.FloatField(),
            "reply": serializers.CharField(required=False),
            "error": serializers.CharField(required=False),
        }), **errors(400)},
        description="Send a short prompt to the model; ok=false carries the provider's error (never its body). "
                    "An endpoint the outbound guard refuses (loopback, private, link-local or metadata address not "
                    "in MODEL_ENDPOINT_ALLOWLIST) is a 400 with code model_endpoint_refused, and nothing is sent.",
    )
    def post(self, request, model_id: str):
        return Response(services.model_test(user=request.user, model_id=model_id))


class ModelSelectedApi(APIView):
    class ModelSelectInputSerializer(serializers.Serializer):
        model_id = serializers.CharField(max_length=64)

    class ModelSelectedOutputSerializer(serializers.Serializer):
        selected_model = serializers.CharField(allow_null=True)
        model = ModelOutputSerializer(allow_null=True)

    @extend_schema(summary="The selected model", responses=ModelSelectedOutputSerializer,
                   operation_id="models_selected_retrieve")
    def get(self, request):
        entry = selectors.model_selected(user=request.user)
        selected = entry.model_id if entry else None
        return Response({"selected_model": selected, "model": _out(entry, selected) if entry else None})

    @extend_schema(summary="Select the model answers use by default", request=ModelSelectInputSerializer,
                   responses=ModelSelectedOutputSerializer, operation_id="models_selected_update")
    def put(self, request):
        data = self.ModelSelectInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        entry = services.model_select(user=request.user, model_id=data.validated_data["model_id"])
        return Response({"selected_model": entry.model_id, "model": _out(entry, entry.model_id)})
