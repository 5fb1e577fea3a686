from django.urls import path

from operations.api import trash

urlpatterns = [
    path("trash/", trash.TrashListApi.as_view(), name="trash"),
    path("trash/<str:kind>/<str:item_id>/", trash.TrashItemApi.as_view(), name="trash-item"),
    path("trash/<str:kind>/<str:item_id>/restore/", trash.TrashRestoreApi.as_view(), name="trash-restore"),
]
