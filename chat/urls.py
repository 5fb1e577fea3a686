from django.urls import path

from chat.api import conversations, models
from layra.routes import path_with_alias

urlpatterns = [
    path("models/", models.ModelListCreateApi.as_view(), name="model-list"),
    *path_with_alias("models/selected", models.ModelSelectedApi.as_view(), name="model-selected"),
    path("models/<str:model_id>/", models.ModelDetailApi.as_view(), name="model-detail"),
    *path_with_alias("models/<str:model_id>/test", models.ModelTestApi.as_view(), name="model-test"),
    path("conversations/", conversations.ConversationListCreateApi.as_view(), name="conversation-list"),
    path("conversations/<str:conversation_id>/", conversations.ConversationDetailApi.as_view(),
         name="conversation-detail"),
    *path_with_alias("conversations/<str:conversation_id>/messages", conversations.MessageApi.as_view(),
                     name="conversation-messages"),
    *path_with_alias("conversations/<str:conversation_id>/files", conversations.ConversationFilesApi.as_view(),
                     name="conversation-files"),
]
