from django.urls import path

from knowledge.api import batches, views
from knowledge.api.search import SearchApi
from layra.routes import path_with_alias

urlpatterns = [
    path("knowledge-bases/", views.KnowledgeBaseListCreateApi.as_view(), name="knowledge-bases"),
    path("knowledge-bases/<str:knowledge_base_id>/", views.KnowledgeBaseDetailApi.as_view(), name="knowledge-base"),
    path("knowledge-bases/<str:knowledge_base_id>/files/", views.FileListUploadApi.as_view(),
         name="knowledge-base-files"),
    path("files/<str:file_id>/", views.FileDetailApi.as_view(), name="file"),
    path("files/<str:file_id>/versions/", views.FileVersionsApi.as_view(), name="file-versions"),
    *path_with_alias("files/<str:file_id>/download", views.FileDownloadApi.as_view(), name="file-download"),
    *path_with_alias("files/<str:file_id>/pages/<int:page_number>/image", views.PageImageApi.as_view(),
                     name="file-page-image"),
    path("uploads/<str:batch_id>/", batches.UploadBatchApi.as_view(), name="upload-batch"),
    path("tasks/", batches.TaskListApi.as_view(), name="task-list"),
    path("tasks/<str:task_id>/", views.TaskDetailApi.as_view(), name="task"),
    path("tasks/<str:task_id>/retry/", batches.TaskRetryApi.as_view(), name="task-retry"),
    *path_with_alias("tasks/<str:task_id>/events", views.TaskEventsApi.as_view(), name="task-events"),
    *path_with_alias("tasks/<str:task_id>/cancel", views.TaskCancelApi.as_view(), name="task-cancel"),
    path("search/", SearchApi.as_view(), name="search"),
]
