from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from layra import handlers, spa
from layra.routes import path_with_alias
from layra.views import ApiRootApi, HealthLiveApi, HealthReadyApi

# Every route ends with a slash; those that had none keep a slash-less alias (layra/routes.py).
api_v1 = [
    path("", ApiRootApi.as_view(), name="api-root"),
    *path_with_alias("health/live", HealthLiveApi.as_view(), name="health-live"),
    *path_with_alias("health/ready", HealthReadyApi.as_view(), name="health-ready"),
    path("", include("accounts.urls")),
    path("", include("knowledge.urls")),
    path("", include("chat.urls")),
    path("openai/", include("chat.openai_api.urls")),  # OpenAI's shapes and paths (DECISIONS: exempt)
    path("", include("workflows.urls")),
    path("", include("operations.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("", include("chat.mcp_server.urls")),  # /mcp: MCP over streamable HTTP (chat/mcp_server/bridge.py)
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("metrics", handlers.metrics, name="prometheus-django-metrics"),  # token or allowed network
    # The web app: its assets, then index.html for every other path (client-side routes).
    path("assets/<path:path>", spa.asset, name="spa-asset"),
    re_path(rf"^(?!{spa.SERVER_PREFIXES})(?P<path>.*)$", spa.index, name="spa"),
]

# JSON error shape under /api/ and /mcp; Django's pages elsewhere.
handler400 = handlers.bad_request
handler403 = handlers.permission_denied
handler404 = handlers.page_not_found
handler500 = handlers.server_error
