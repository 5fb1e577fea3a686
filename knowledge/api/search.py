"""Thin search API: validate the input, call knowledge.search.search, serialize the cited pages."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.ratelimit import rate_limit
from embeddings.hybrid import MODES
from knowledge.search import search
from knowledge.search_filters import FIELDS, SearchFilters, SearchFiltersSerializer
from layra.openapi import errors


class HitSerializer(serializers.Serializer):
    knowledge_base_id = serializers.CharField()
    file_id = serializers.CharField()
    filename = serializers.CharField()
    image_id = serializers.CharField()
    page_number = serializers.IntegerField()
    score = serializers.FloatField(help_text="hybrid: fused rank score in (0, 1]; dense: MaxSim; lexical: BM25")
    dense_score = serializers.FloatField(allow_null=True, help_text="MaxSim; null when only the lexical side found it")
    lexical_score = serializers.FloatField(allow_null=True, help_text="BM25; null when the text did not match")
    snippet = serializers.CharField(allow_blank=True, help_text="page text around the best match; empty without text")
    image_url = serializers.CharField(help_text="signed same-origin URL of the page image (short-lived)")
    thumbnail_url = serializers.CharField()


class SearchApi(APIView):
    class InputSerializer(SearchFiltersSerializer):
        class Meta:
            ref_name = "SearchInput"

        query = serializers.CharField(max_length=4000)
        knowledge_base_ids = serializers.ListField(child=serializers.CharField(max_length=64), min_length=1,
                                                   max_length=50)
        top_k = serializers.IntegerField(min_value=1, max_value=50, default=5)
        score_threshold = serializers.FloatField(required=False, allow_null=True, default=None)
        mode = serializers.ChoiceField(choices=list(MODES), default="hybrid")

    class OutputSerializer(serializers.Serializer):
        results = HitSerializer(many=True)

    @extend_schema(
        operation_id="search_pages",
        request=InputSerializer,
        responses={200: OutputSerializer, **errors(429)},
        summary="Best pages of the caller's knowledge bases for a query (hybrid: BM25 + late-interaction MaxSim).",
        description="`file_ids`, `filename` (contains, any case) and `uploaded_after` / `uploaded_before` narrow "
                    "the search to some files of the knowledge bases: they are applied inside the vector and "
                    "lexical searches, so `top_k` hits come from those files. Every hit carries `filename`, "
                    "`page_number`, a text `snippet` and signed `image_url` / `thumbnail_url`.",
    )
    def post(self, request):
        rate_limit(request=request, scope="search")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        filters = SearchFilters.of({name: fields.pop(name, None) for name in FIELDS})
        pages = search(user=request.user, **fields, filters=filters)
        return Response(self.OutputSerializer({"results": pages}).data)
