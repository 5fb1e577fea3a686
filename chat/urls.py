from django.urls import path

from chat.api import conversations, models

urlpatterns = [
    path("models/", models.ModelListCreateApi.as_view(), name="model-list"),
    path("models/selected", models.ModelSelectedApi.as_view(), name="model-selected"),
    path("models/<str:model_id>/", models.ModelDetailApi.as_view(), name="model-detail"),
    path("models/<str:model_id>/test", models.ModelTestApi.as_view(), name="model-test"),
    path("conversations/", conversations.ConversationListCreateApi.as_view(), name="conversation-list"),
    path("conversations/<str:conversation_id>/", conversations.ConversationDetailApi.as_view(),
         name="conversation-detail"),
    path("conversations/<str:conversation_id>/messages", conversations.MessageApi.as_view(),
         name="conversation-messages"),
    path("conversations/<str:conversation_id>/files", conversations.ConversationFilesApi.as_view(),
         name="conversation-files"),
]
