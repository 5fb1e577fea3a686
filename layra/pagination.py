from collections.abc import Callable
from functools import cache

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response


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


# The query parameters of every GET list (its operation documents them: APIViews get no automatic ones).
PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="Page number, from 1; past the last page answers 404."),
    OpenApiParameter("page_size", int, description=f"Items per page (default 20, at most "
                                                   f"{PagePagination.max_page_size})."),
]


def page_response(*, request, view, items, serializer: type[serializers.Serializer], context: dict | None = None,
                  to_item: Callable | None = None) -> Response:
    """One page of `items` as {count, next, previous, results}, each item through `to_item` (only the page's items
    are converted), then `serializer`."""
    paginator = PagePagination()
    page = paginator.paginate_queryset(items, request, view=view)
    if to_item is not None:
        page = [to_item(item) for item in page]
    return paginator.get_paginated_response(serializer(page, many=True, context=context or {}).data)


@cache
def paginated(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The schema of a PagePagination page of `item`s: {count, next, previous, results}."""
    name = item.__name__.removesuffix("Serializer")
    return type(f"Paginated{name}Serializer", (serializers.Serializer,), {
        "is_page": True,  # the schema names its operation a list (layra/openapi.py)
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": item(many=True),
    })
