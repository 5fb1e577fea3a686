"""The trash of conversations: a delete hides the conversation everywhere (`is_delete` + `deleted_at`) and sends its
temporary KBs to the trash with it (knowledge.trash, `trashed_with`); a restore brings them back together, a purge
(now, by the nightly cleanup after TRASH_RETENTION_DAYS, or by CONVERSATION_RETENTION_DAYS) removes them all."""

from datetime import datetime

from accounts.models import User
from accounts.services import audit_log_record
from chat.documents import Conversation, utcnow
from chat.selectors import conversation_get
from knowledge import trash as knowledge_trash
from layra.errors import NotFound

CONVERSATION_MARK = "conversation:"


def _mark(conversation_id: str) -> str:
    return CONVERSATION_MARK + conversation_id


def _temp_kb_ids(conversation: Conversation) -> set[str]:
    return {conversation.temp_db, *(t.temp_db for t in conversation.turns)} - {None, ""}


def conversation_trash(*, user: User, conversation_id: str) -> None:
    conversation = conversation_get(user=user, conversation_id=conversation_id)
    Conversation.objects(conversation_id=conversation_id, username=user.username).update_one(
        set__is_delete=True, set__deleted_at=utcnow())
    for knowledge_base_id in _temp_kb_ids(conversation):
        try:
            knowledge_trash.knowledge_base_trash(user=user, knowledge_base_id=knowledge_base_id,
                                                 trashed_with=_mark(conversation_id))
        except NotFound:
            pass  # already gone
    audit_log_record(user=user, action="conversation.delete", resource_type="conversation",
                     resource_id=conversation_id, details={"trash": True})


def _trashed(*, user: User, conversation_id: str) -> Conversation:
    conversation = Conversation.objects(conversation_id=conversation_id, username=user.username,
                                        is_delete=True).exclude("turns").first()
    if conversation is None:
        raise NotFound("Conversation not found in the trash.")
    return conversation


def conversation_restore(*, user: User, conversation_id: str) -> Conversation:
    """Bring a conversation back from the trash with its temporary KBs."""
    _trashed(user=user, conversation_id=conversation_id)
    knowledge_trash.knowledge_bases_restore_with(user=user, trashed_with=_mark(conversation_id))
    Conversation.objects(conversation_id=conversation_id, username=user.username).update_one(
        set__is_delete=False, set__deleted_at=None)
    audit_log_record(user=user, action="conversation.restore", resource_type="conversation",
                     resource_id=conversation_id)
    return conversation_get(user=user, conversation_id=conversation_id)


def conversation_purge(*, conversation_id: str) -> None:
    """Remove a conversation and its temporary KBs everywhere (any owner). Safe to repeat."""
    conversation = Conversation.objects(conversation_id=conversation_id).first()
    if conversation is not None:
        for knowledge_base_id in _temp_kb_ids(conversation):
            knowledge_trash.knowledge_base_purge_any(knowledge_base_id=knowledge_base_id)
    knowledge_trash.knowledge_bases_purge_with(trashed_with=_mark(conversation_id))
    Conversation.objects(conversation_id=conversation_id).delete()


def conversation_purge_trashed(*, user: User, conversation_id: str) -> None:
    _trashed(user=user, conversation_id=conversation_id)
    conversation_purge(conversation_id=conversation_id)
    audit_log_record(user=user, action="conversation.purge", resource_type="conversation",
                     resource_id=conversation_id)


def trash_items(*, user: User) -> list[dict]:
    rows = Conversation.objects(username=user.username, is_delete=True).only(
        "conversation_id", "conversation_name", "deleted_at", "last_modify_at")
    return [{"kind": "conversation", "id": c.conversation_id, "name": c.conversation_name,
             "deleted_at": c.deleted_at or c.last_modify_at} for c in rows]


def trash_purge_expired(*, cutoff: datetime, dry_run: bool = False) -> int:
    ids = list(Conversation.objects(is_delete=True, deleted_at__lte=cutoff).scalar("conversation_id"))
    if not dry_run:
        for conversation_id in ids:
            conversation_purge(conversation_id=conversation_id)
    return len(ids)


def conversations_retention_purge(*, cutoff: datetime, dry_run: bool = False) -> int:
    """CONVERSATION_RETENTION_DAYS: purge conversations (in the trash or not) with no activity since `cutoff`."""
    ids = list(Conversation.objects(last_modify_at__lte=cutoff).scalar("conversation_id"))
    if not dry_run:
        for conversation_id in ids:
            conversation_purge(conversation_id=conversation_id)
    return len(ids)
