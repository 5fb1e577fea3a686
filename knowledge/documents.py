"""Knowledge bases and files in MongoDB (field names of the original schema)."""

from enum import StrEnum

import mongoengine as me

from layra.ids import utcnow
from layra.mongo import Document


class FileStatus(StrEnum):
    """A file's ingestion status as stored in `File.status` (its job's finer state is IngestionJob.State)."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class FileKind(StrEnum):
    """What an upload was detected as (`File.kind`); office documents are converted to PDF first."""

    PDF = "pdf"
    OFFICE = "office"
    IMAGE = "image"
    TEXT = "text"


class KnowledgeBase(Document):
    knowledge_base_id = me.StringField(required=True, unique=True)
    knowledge_base_name = me.StringField(required=True, max_length=200)
    username = me.StringField(required=True)
    is_delete = me.BooleanField(default=False)
    # A temporary KB belongs to one conversation (chat uploads); hidden from KB lists.
    is_temp = me.BooleanField(default=False)
    conversation_id = me.StringField(null=True)
    # Bumped on every change that affects search results: part of the search cache key.
    version = me.IntField(default=1)
    # Embedder that built the KB's collection (name and dim), recorded at first index.
    embedder = me.StringField(null=True)
    # Files whose pages a search must not return although their vectors are still indexed: files in the trash and
    # new versions still being ingested (knowledge.trash, knowledge.versions). Changed together with `version`.
    hidden_file_ids = me.ListField(me.StringField())
    deleted_at = me.DateTimeField(null=True)  # when it went to the trash (is_delete)
    # Why it is in the trash when something else put it there: "conversation:{id}" for a conversation's temp KB.
    trashed_with = me.StringField(null=True)
    created_at = me.DateTimeField(default=utcnow)
    last_modify_at = me.DateTimeField(default=utcnow)

    meta = {
        "collection": "knowledge_bases",
        "indexes": [
            {"fields": ["username", "is_delete", "-last_modify_at"]},
            {"fields": ["conversation_id"], "sparse": True},
            {"fields": ["is_delete", "deleted_at"]},  # the nightly purge of the trash
        ],
    }

    def save(self, *args, **kwargs):
        self.last_modify_at = utcnow()
        return super().save(*args, **kwargs)


class PageImage(me.EmbeddedDocument):
    images_id = me.StringField(required=True)
    page_number = me.IntField(required=True)  # 1-based
    minio_filename = me.StringField(required=True)  # object key of the page image
    text = me.StringField(default="")  # the page's text layer ("" when it has none)
    has_text = me.BooleanField(default=False)
    width = me.IntField()
    height = me.IntField()


class File(Document):
    file_id = me.StringField(required=True, unique=True)
    knowledge_db_id = me.StringField(required=True)
    username = me.StringField(required=True)
    filename = me.StringField(required=True)  # sanitised display name
    minio_filename = me.StringField(required=True)  # object key of the original
    content_type = me.StringField()
    kind = me.StringField()  # a FileKind
    size = me.IntField()
    sha256 = me.StringField()
    status = me.StringField(default=FileStatus.QUEUED.value)  # a FileStatus
    error = me.StringField(null=True)
    task_id = me.StringField(null=True)
    page_count = me.IntField(default=0)
    images = me.EmbeddedDocumentListField(PageImage)
    is_delete = me.BooleanField(default=False)
    deleted_at = me.DateTimeField(null=True)  # when it went to the trash (is_delete)
    trashed_with = me.StringField(null=True)  # "knowledge_base:{id}": in the trash with its KB, restored with it
    # Versions (knowledge.versions): files of one document share `document_id` (None: the file's own id).
    document_id = me.StringField(null=True)
    version = me.IntField(default=1)
    replaces = me.StringField(null=True)  # a new version still being ingested: the file it will replace
    replaced_by = me.StringField(null=True)  # a version in the trash: the file that replaced it
    created_at = me.DateTimeField(default=utcnow)
    last_modify_at = me.DateTimeField(default=utcnow)

    meta = {
        "collection": "files",
        "indexes": [
            {"fields": ["knowledge_db_id", "is_delete", "-created_at"]},  # also a KB's file list, page by page
            {"fields": ["knowledge_db_id", "sha256"]},
            {"fields": ["username", "is_delete"]},
            {"fields": ["images.images_id"]},
            {"fields": ["knowledge_db_id", "filename"]},  # a re-upload finds the file it versions
            {"fields": ["document_id"], "sparse": True},
            {"fields": ["is_delete", "deleted_at"]},  # the nightly purge of the trash
        ],
    }

    def save(self, *args, **kwargs):
        self.last_modify_at = utcnow()
        return super().save(*args, **kwargs)
