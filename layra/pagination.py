from functools import cache

from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination


class CountedQuery:
    """An ordered query whose size is already known (a cached count): PagePagination then reads one page of it
    from the store (skip/limit), not the whole list, and asks the store for no count."""

    ordered = True  # Paginator warns about unordered lists

    def __init__(self, query, count: int):
        self._query = query
        self._count = count

    def count(self) -> int:
        return self._count

    def __getitem__(self, window: slice) -> list:
        return list(self._query[window])


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
