"""Operator admin over the Mongo documents: list (search, filters, pagination), detail, soft delete, actions.

Served under /admin/mongo/<name>/ by the default admin site (staff only). Secrets are masked.
"""

import json
from importlib import import_module

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from mongoengine.queryset.visitor import Q

from accounts.models import User
from knowledge.documents import utcnow
from knowledge.jobs import job_cancel, job_retry
from knowledge.models import IngestionJob
from layra.errors import DomainError
from operations.reindex import reindex_file, reindex_knowledge_base
from operations.trash import trash_move

SECRET_WORDS = ("api_key", "password", "secret", "token")


def mask(value):
    if isinstance(value, dict):
        return {k: ("****" + str(v)[-4:] if v and any(w in k.lower() for w in SECRET_WORDS) and k != "api_key_hint"
                    else mask(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


class DocumentAdmin:
    name = ""
    document_path = ""
    id_field = ""
    list_display: tuple = ()
    search_fields: tuple = ()
    list_filter: tuple = ()
    soft_delete = True
    actions: tuple = ()  # (name, label)
    per_page = 50

    @property
    def document(self):
        module, attr = self.document_path.rsplit(".", 1)
        return getattr(import_module(module), attr)

    def queryset(self, request):
        qs = self.document.objects
        term = request.GET.get("q", "").strip()
        if term and self.search_fields:
            cond = Q()
            for field in self.search_fields:
                cond |= Q(**{f"{field}__icontains": term})
            qs = qs.filter(cond)
        for field in self.list_filter:
            value = request.GET.get(field)
            if value not in (None, ""):
                qs = qs.filter(**{field: {"true": True, "false": False}.get(value, value)})
        return qs.order_by("-id")

    def get(self, object_id):
        obj = self.document.objects(**{self.id_field: object_id}).first()
        if obj is None:
            raise Http404
        return obj

    def links(self, obj) -> list[tuple[str, str]]:
        return []

    def run_action(self, action, obj) -> str:
        raise Http404


class KnowledgeBaseAdmin(DocumentAdmin):
    name, document_path, id_field = "knowledgebase", "knowledge.documents.KnowledgeBase", "knowledge_base_id"
    list_display = ("knowledge_base_id", "knowledge_base_name", "username", "is_temp", "is_delete", "version")
    search_fields = ("knowledge_base_name", "username", "knowledge_base_id")
    list_filter = ("is_delete", "is_temp", "username")
    actions = (("reindex", "Reindex"),)

    def links(self, obj):
        return [("Files", reverse("admin:mongo_list", args=["file"]) + f"?knowledge_db_id={obj.knowledge_base_id}"),
                ("Ingestion jobs", reverse("admin:knowledge_ingestionjob_changelist")
                 + f"?knowledge_base_id={obj.knowledge_base_id}")]

    def run_action(self, action, obj):
        if action == "reindex":
            report = reindex_knowledge_base(knowledge_base_id=obj.knowledge_base_id)
            return f"Reindexed {report.files} files ({report.rows} vector rows); errors: {len(report.errors)}"
        return super().run_action(action, obj)


class FileAdmin(DocumentAdmin):
    name, document_path, id_field = "file", "knowledge.documents.File", "file_id"
    list_display = ("file_id", "filename", "username", "knowledge_db_id", "status", "page_count", "is_delete")
    search_fields = ("filename", "username", "file_id")
    list_filter = ("status", "is_delete", "knowledge_db_id", "username")
    actions = (("reindex", "Reindex"), ("retry", "Retry failed job"), ("cancel", "Cancel job"))

    def _job(self, obj):
        return IngestionJob.objects.filter(file_id=obj.file_id).order_by("-created_at").first()

    def links(self, obj):
        out = [("Knowledge base", reverse("admin:mongo_detail", args=["knowledgebase", obj.knowledge_db_id]))]
        job = self._job(obj)
        if job:
            out.append((f"Ingestion job ({job.state})", reverse("admin:knowledge_ingestionjob_change", args=[job.pk])))
        return out

    def run_action(self, action, obj):
        if action == "reindex":
            report = reindex_file(file_id=obj.file_id)
            return f"Reindexed {report.pages} pages" if not report.errors else report.errors[0]
        job = self._job(obj)
        if job is None:
            return "The file has no ingestion job."
        if action == "retry":
            return f"Job {job_retry(job=job).task_id} requeued"
        if action == "cancel":
            return f"Job {job_cancel(job=job).task_id} cancelled"
        return super().run_action(action, obj)


class ModelConfigAdmin(DocumentAdmin):
    name, document_path, id_field = "modelconfig", "chat.documents.ModelConfig", "username"
    list_display = ("username", "selected_model")
    search_fields = ("username",)
    soft_delete = False


class ConversationAdmin(DocumentAdmin):
    name, document_path, id_field = "conversation", "chat.documents.Conversation", "conversation_id"
    list_display = ("conversation_id", "conversation_name", "username", "temp_db")
    search_fields = ("conversation_name", "username", "conversation_id")
    list_filter = ("username",)
    soft_delete = False


class WorkflowAdmin(DocumentAdmin):
    name, document_path, id_field = "workflow", "workflows.documents.Workflow", "workflow_id"
    list_display = ("workflow_id", "workflow_name", "username", "is_delete")
    search_fields = ("workflow_name", "username", "workflow_id")
    list_filter = ("is_delete", "username")


class ChatflowAdmin(DocumentAdmin):
    name, document_path, id_field = "chatflow", "workflows.documents.Chatflow", "chatflow_id"
    list_display = ("chatflow_id", "workflow_id", "username", "is_delete")
    search_fields = ("username", "chatflow_id")
    list_filter = ("is_delete", "username")


ADMINS = {a.name: a for a in (KnowledgeBaseAdmin(), FileAdmin(), ModelConfigAdmin(), ConversationAdmin(),
                              WorkflowAdmin(), ChatflowAdmin())}


def _admin(name):
    if name not in ADMINS:
        raise Http404
    return ADMINS[name]


def index_view(site, request):
    ctx = {**site.each_context(request), "title": "Mongo data", "admins": list(ADMINS.values())}
    return TemplateResponse(request, "mongo_admin/index.html", ctx)


def list_view(site, request, name):
    admin = _admin(name)
    page = Paginator(admin.queryset(request), admin.per_page).get_page(request.GET.get("p"))
    rows = [(getattr(obj, admin.id_field), [getattr(obj, f, "") for f in admin.list_display]) for obj in page]
    ctx = {**site.each_context(request), "title": admin.document.__name__, "admin_obj": admin, "page": page,
           "rows": rows, "q": request.GET.get("q", ""), "count": page.paginator.count}
    return TemplateResponse(request, "mongo_admin/list.html", ctx)


# The admin's pages whose "move to the trash" is the owner's own delete (operations.trash).
TRASH_KINDS = {"knowledgebase": "knowledge_base", "file": "file", "workflow": "workflow"}


def detail_view(site, request, name, object_id):
    admin = _admin(name)
    obj = admin.get(object_id)
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "soft_delete" and admin.soft_delete:
                owner = User.objects.filter(username=getattr(obj, "username", None)).first()
                if name in TRASH_KINDS and owner is not None:
                    # The owner's own delete: a KB takes its files, a workflow its chatflows, caches follow.
                    trash_move(user=owner, kind=TRASH_KINDS[name], item_id=object_id)
                else:
                    admin.document.objects(**{admin.id_field: object_id}).update_one(set__is_delete=True,
                                                                                    set__deleted_at=utcnow())
                message = "Moved to the trash (purged by cleanup after TRASH_RETENTION_DAYS)."
            else:
                message = admin.run_action(action, obj)
            messages.success(request, message)
        except DomainError as exc:
            messages.error(request, exc.message)
        return redirect(reverse("admin:mongo_detail", args=[name, object_id]))
    data = mask(json.loads(obj.to_json()))
    data.pop("_id", None)
    ctx = {**site.each_context(request), "title": f"{admin.document.__name__} {object_id}", "admin_obj": admin,
           "object_id": object_id, "data": json.dumps(data, indent=2, default=str), "links": admin.links(obj)}
    return TemplateResponse(request, "mongo_admin/detail.html", ctx)


def urls(site):
    def wrap(view):
        return site.admin_view(lambda request, *a, **kw: view(site, request, *a, **kw))

    return [
        path("mongo/", wrap(index_view), name="mongo_index"),
        path("mongo/<str:name>/", wrap(list_view), name="mongo_list"),
        path("mongo/<str:name>/<str:object_id>/", wrap(detail_view), name="mongo_detail"),
    ]
