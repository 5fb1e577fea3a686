"""Thin search API: validate the input, call retrieval.search, serialize the pages."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.ratelimit import rate_limit
from embeddings.retrieval import search


class SearchApi(APIView):
    class InputSerializer(serializers.Serializer):
        query = serializers.CharField(max_length=4000)
        knowledge_base_ids = serializers.ListField(child=serializers.CharField(max_length=64), min_length=1,
                                                   max_length=50)
        top_k = serializers.IntegerField(min_value=1, max_value=50, default=5)
        score_threshold = serializers.FloatField(required=False, allow_null=True, default=None)

    class OutputSerializer(serializers.Serializer):
        knowledge_base_id = serializers.CharField()
        file_id = serializers.CharField()
        image_id = serializers.CharField()
        page_number = serializers.IntegerField()
        score = serializers.FloatField()

    @extend_schema(
        operation_id="search_pages",
        request=InputSerializer,
        responses={200: OutputSerializer(many=True)},
        summary="Best pages of the caller's knowledge bases for a query (late-interaction MaxSim).",
    )
    def post(self, request):
        rate_limit(request=request, scope="search")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pages = search(user=request.user, **data.validated_data)
        return Response(self.OutputSerializer(pages, many=True).data)
