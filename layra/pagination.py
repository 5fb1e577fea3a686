from functools import cache

from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination


class PagePagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200


@cache
def paginated(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The schema of a PagePagination page of `item`s: {count, next, previous, results}."""
    name = item.__name__.removesuffix("Serializer")
    return type(f"Paginated{name}Serializer", (serializers.Serializer,), {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": item(many=True),
    })
