from django.urls import path

from chat.api import models

urlpatterns = [
    path("models/", models.ModelListCreateApi.as_view(), name="model-list"),
    path("models/selected", models.ModelSelectedApi.as_view(), name="model-selected"),
    path("models/<str:model_id>/", models.ModelDetailApi.as_view(), name="model-detail"),
    path("models/<str:model_id>/test", models.ModelTestApi.as_view(), name="model-test"),
]
