"""The browser's refresh path: the refresh token lives in an HttpOnly, SameSite=Strict cookie that page scripts
cannot read, and spending it needs a CSRF token sent twice (a readable cookie echoed in a header), so another
site can neither read nor replay it. API clients keep sending the refresh token in the JSON body."""

import secrets

from django.conf import settings
from rest_framework.exceptions import PermissionDenied

REFRESH_COOKIE = "layra_refresh"
CSRF_COOKIE = "layra_csrf"
CSRF_HEADER = "HTTP_X_CSRF_TOKEN"  # X-CSRF-Token
_REFRESH_PATH = "/api/v1/auth/"  # refresh and logout only: the cookie travels with nothing else


def set_refresh_cookies(response, *, refresh: str, request) -> None:
    max_age = int(settings.JWT_REFRESH_TTL.total_seconds())
    secure = request.is_secure()
    response.set_cookie(REFRESH_COOKIE, refresh, max_age=max_age, path=_REFRESH_PATH, secure=secure,
                        httponly=True, samesite="Strict")
    response.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(32), max_age=max_age, path="/", secure=secure,
                        httponly=False, samesite="Strict")


def clear_refresh_cookies(response) -> None:
    response.delete_cookie(REFRESH_COOKIE, path=_REFRESH_PATH, samesite="Strict")
    response.delete_cookie(CSRF_COOKIE, path="/", samesite="Strict")


def refresh_from_cookie(request) -> str | None:
    """The cookie's refresh token, or None when there is none; a cookie without the matching CSRF header is
    refused (403)."""
    refresh = request.COOKIES.get(REFRESH_COOKIE)
    if not refresh:
        return None
    expected = request.COOKIES.get(CSRF_COOKIE, "")
    sent = request.META.get(CSRF_HEADER, "")
    if not expected or not secrets.compare_digest(expected, sent):
        raise PermissionDenied("The X-CSRF-Token header must repeat the layra_csrf cookie.", code="csrf_failed")
    return refresh
