"""Model configs and conversations in MongoDB (field names of the original schema)."""

from enum import StrEnum

import mongoengine as me

from layra.ids import utcnow
from layra.mongo import Document


class TurnStatus(StrEnum):
    """A turn's answer: streaming until it ends one of the other three ways (values as stored)."""

    STREAMING = "streaming"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ModelEntry(me.EmbeddedDocument):
    model_id = me.StringField(required=True)
    model_name = me.StringField(required=True, max_length=200)
    model_url = me.StringField(required=True, max_length=2000)  # OpenAI-compatible base URL
    api_key = me.StringField(default="")  # Fernet token (chat.crypto); never the plain key
    api_key_hint = me.StringField(default="")  # masked form shown to clients
    base_used = me.ListField(me.StringField())  # knowledge_base_ids searched for answers
    system_prompt = me.StringField(default="")
    temperature = me.FloatField(null=True)
    max_length = me.IntField(null=True)  # max tokens of the answer
    top_P = me.FloatField(null=True)
    top_K = me.IntField(default=3)  # pages retrieved per question
    score_threshold = me.FloatField(null=True)
    created_at = me.DateTimeField(default=utcnow)
    last_modify_at = me.DateTimeField(default=utcnow)


class ModelConfig(Document):
    """One document per user: their models and the selected one."""

    username = me.StringField(required=True, unique=True)
    selected_model = me.StringField(null=True)
    models = me.EmbeddedDocumentListField(ModelEntry)
    last_modify_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "model_config"}

    def save(self, *args, **kwargs):
        self.last_modify_at = utcnow()
        return super().save(*args, **kwargs)


class Turn(me.EmbeddedDocument):
    message_id = me.StringField(required=True)
    parent_message_id = me.StringField(null=True)  # None for a first question; turns form a tree
    user_message = me.StringField(required=True)
    ai_message = me.StringField(default="")
    model_id = me.StringField(null=True)
    model_name = me.StringField(default="")
    temp_db = me.StringField(null=True)  # the conversation's temporary KB searched for this turn
    file_used = me.ListField(me.DictField())  # citations: file_id, filename, page_number, score, image_id, ...
    status = me.StringField(default=TurnStatus.STREAMING.value)  # TurnStatus
    error = me.StringField(null=True)
    prompt_tokens = me.IntField(default=0)
    completion_tokens = me.IntField(default=0)
    total_token = me.IntField(default=0)
    timestamp = me.DateTimeField(default=utcnow)
    finished_at = me.DateTimeField(null=True)


class Conversation(Document):
    conversation_id = me.StringField(required=True, unique=True)
    conversation_name = me.StringField(default="New conversation", max_length=200)
    username = me.StringField(required=True)
    temp_db = me.StringField(null=True)  # knowledge_base_id of the conversation's temporary KB
    is_read = me.BooleanField(default=True)
    turns = me.EmbeddedDocumentListField(Turn)
    # In the trash (chat.trash): hidden everywhere, restored whole or purged later. Older documents lack the field:
    # queries ask for `is_delete__ne=True`.
    is_delete = me.BooleanField(default=False)
    deleted_at = me.DateTimeField(null=True)
    created_at = me.DateTimeField(default=utcnow)
    last_modify_at = me.DateTimeField(default=utcnow)

    meta = {
        "collection": "conversations",
        "indexes": [
            {"fields": ["username", "-last_modify_at"]},
            {"fields": ["turns.temp_db"], "sparse": True},
            {"fields": ["is_delete", "deleted_at"]},  # the nightly purge of the trash
            {"fields": ["last_modify_at"]},  # CONVERSATION_RETENTION_DAYS
        ],
    }
