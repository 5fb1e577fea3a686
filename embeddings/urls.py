from django.urls import path

from embeddings.api.views import SearchApi

urlpatterns = [
    path("search/", SearchApi.as_view(), name="search"),
]
