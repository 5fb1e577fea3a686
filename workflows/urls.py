from django.urls import path

from layra.routes import path_with_alias

from .api import views

urlpatterns = [
    path("workflows/", views.WorkflowListCreateApi.as_view(), name="workflow-list"),
    path("workflows/import/", views.WorkflowImportApi.as_view(), name="workflow-import"),
    path("workflows/<str:workflow_id>/", views.WorkflowDetailApi.as_view(), name="workflow-detail"),
    path("workflows/<str:workflow_id>/duplicate/", views.WorkflowDuplicateApi.as_view(), name="workflow-duplicate"),
    path("workflows/<str:workflow_id>/export/", views.WorkflowExportApi.as_view(), name="workflow-export"),
    *path_with_alias("workflows/<str:workflow_id>/runs", views.RunListCreateApi.as_view(), name="workflow-runs"),
    path("runs/<str:run_id>/", views.RunDetailApi.as_view(), name="run-detail"),
    *path_with_alias("runs/<str:run_id>/events", views.RunEventsApi.as_view(), name="run-events"),
    *path_with_alias("runs/<str:run_id>/input", views.RunInputApi.as_view(), name="run-input"),
    *path_with_alias("runs/<str:run_id>/cancel", views.RunCancelApi.as_view(), name="run-cancel"),
    path("custom-nodes/", views.CustomNodeListCreateApi.as_view(), name="custom-node-list"),
    path("custom-nodes/<str:name>/", views.CustomNodeDetailApi.as_view(), name="custom-node-detail"),
    path("chatflows/", views.ChatflowListCreateApi.as_view(), name="chatflow-list"),
    path("chatflows/<str:chatflow_id>/", views.ChatflowDetailApi.as_view(), name="chatflow-detail"),
    path("chatflows/<str:chatflow_id>/messages/", views.ChatflowMessageApi.as_view(), name="chatflow-message"),
]
