"""The web app (frontend/, built to FRONTEND_DIST): index.html for every client-side route and its hashed assets,
each with a strict Content-Security-Policy. Everything under /api/, /admin/, /mcp and /static/ stays Django's."""

import mimetypes
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from django.views.decorators.http import require_safe

# Self only, no inline script or style: the build emits files, never inline code. Images may be blob: (a chosen
# file's preview) or data: (small icons the bundler inlines).
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
                           "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")
# Paths the web app never owns: a client route there would hide the API's JSON 404 or the admin.
SERVER_PREFIXES = r"api(/|$)|admin(/|$)|mcp(/|$)|static/|metrics$|assets/"

_NOT_BUILT = ("<!doctype html><title>LAYRA</title><h1>The web app is not built</h1>"
              "<p>Run <code>make run</code> (or <code>npm ci &amp;&amp; npm run build</code> in frontend/).</p>")


def _secured(response: HttpResponse) -> HttpResponse:
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "same-origin"
    return response


@require_safe
def index(request, path: str = "") -> HttpResponse:
    page = Path(settings.FRONTEND_DIST) / "index.html"
    if not page.is_file():
        return _secured(HttpResponse(_NOT_BUILT, status=503))
    response = HttpResponse(page.read_bytes(), content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-cache"  # a new build's asset names must be seen at once
    return _secured(response)


@require_safe
def asset(request, path: str) -> FileResponse:
    root = (Path(settings.FRONTEND_DIST) / "assets").resolve()
    target = (root / path).resolve()
    if not target.is_file() or root not in target.parents:
        raise Http404("No such asset.")
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    response = FileResponse(target.open("rb"), content_type=content_type)
    response["Cache-Control"] = "public, max-age=31536000, immutable"  # names carry the content hash
    return _secured(response)
