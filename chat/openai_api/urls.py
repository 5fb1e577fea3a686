"""/api/v1/openai/...: OpenAI's paths as its SDK calls them (no trailing slash; DECISIONS exempts them)."""

from django.urls import path, re_path

from chat.openai_api import errors, views

urlpatterns = [
    path("chat/completions", views.ChatCompletionApi.as_view(), name="openai-chat-completions"),
    path("models", views.ModelListApi.as_view(), name="openai-models"),
    path("models/<str:model_id>", views.ModelDetailApi.as_view(), name="openai-model"),
    re_path(r"^(?P<path>.*)$", errors.not_found, name="openai-not-found"),
]
