"""One trailing-slash rule: every route ends with a slash. Routes that once had none keep their slash-less path as
an alias to the same view (no redirect: a redirected POST would lose its body); the OpenAPI document marks the
alias deprecated (layra/openapi.py)."""

from django.urls import URLPattern, path

# Paths that follow someone else's API shapes instead (DECISIONS: /api/v1/openai/ is OpenAI's: its paths have no
# trailing slash, its lists are not pages, its errors are OpenAI's error object).
EXEMPT_PREFIXES = ("api/v1/openai/",)


def is_exempt(route: str) -> bool:
    """A route (with or without its leading slash) exempt from the trailing-slash, page and error conventions."""
    return route.lstrip("/").startswith(EXEMPT_PREFIXES)


def path_with_alias(route: str, view, *, name: str) -> list[URLPattern]:
    """`route/` under `name`, and the old slash-less `route` as its deprecated alias."""
    route = route.rstrip("/")
    return [path(f"{route}/", view, name=name), path(route, view, name=f"{name}-noslash")]
