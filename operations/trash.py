"""The user's trash across the apps: knowledge bases and files (knowledge), conversations (chat), workflows with their
chatflows (workflows). Each app owns its trash, restore and purge; this module only lists them together and
dispatches by kind, here in the top layer because it is the one that may import all of them."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from accounts.models import User
from chat import trash as chat_trash
from knowledge import trash as knowledge_trash
from layra.errors import NotFound
from workflows import trash as workflows_trash


@dataclass(frozen=True)
class Kind:
    trash: Callable[..., object]  # (user=, item_id=)
    restore: Callable[..., object]  # (user=, item_id=)
    purge: Callable[..., None]  # (user=, item_id=)


KINDS = {
    "knowledge_base": Kind(
        trash=lambda user, item_id: knowledge_trash.knowledge_base_trash(user=user, knowledge_base_id=item_id),
        restore=lambda user, item_id: knowledge_trash.knowledge_base_restore(user=user, knowledge_base_id=item_id),
        purge=lambda user, item_id: knowledge_trash.knowledge_base_purge_trashed(user=user,
                                                                                 knowledge_base_id=item_id)),
    "file": Kind(
        trash=lambda user, item_id: knowledge_trash.file_trash(user=user, file_id=item_id),
        restore=lambda user, item_id: knowledge_trash.file_restore(user=user, file_id=item_id),
        purge=lambda user, item_id: knowledge_trash.file_purge_trashed(user=user, file_id=item_id)),
    "conversation": Kind(
        trash=lambda user, item_id: chat_trash.conversation_trash(user=user, conversation_id=item_id),
        restore=lambda user, item_id: chat_trash.conversation_restore(user=user, conversation_id=item_id),
        purge=lambda user, item_id: chat_trash.conversation_purge_trashed(user=user, conversation_id=item_id)),
    "workflow": Kind(
        trash=lambda user, item_id: workflows_trash.workflow_trash(user=user, workflow_id=item_id),
        restore=lambda user, item_id: workflows_trash.workflow_restore(user=user, workflow_id=item_id),
        purge=lambda user, item_id: workflows_trash.workflow_purge_trashed(user=user, workflow_id=item_id)),
}


def _kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise NotFound(f"No such kind of item in the trash: {kind!r}.", details={"kinds": list(KINDS)})
    return KINDS[kind]


def trash_list(*, user: User) -> list[dict]:
    """Every item of the user's trash, most recently deleted first: {kind, id, name, deleted_at, purge_after,
    knowledge_base_id, replaced_by} (the last two for files)."""
    items = [*knowledge_trash.trash_items(user=user), *chat_trash.trash_items(user=user),
             *workflows_trash.trash_items(user=user)]
    keep = timedelta(days=settings.TRASH_RETENTION_DAYS)
    for item in items:
        item.setdefault("knowledge_base_id", None)
        item.setdefault("replaced_by", None)
        item["purge_after"] = item["deleted_at"] + keep if item["deleted_at"] else None
    items.sort(key=lambda item: (item["deleted_at"] is not None, item["deleted_at"]), reverse=True)
    return items


def trash_restore(*, user: User, kind: str, item_id: str) -> dict:
    """Bring one item back whole; {kind, id} of what came back."""
    _kind(kind).restore(user=user, item_id=item_id)
    return {"kind": kind, "id": item_id}


def trash_purge(*, user: User, kind: str, item_id: str) -> None:
    """Remove one item of the trash everywhere now (vectors, objects, page images, records)."""
    _kind(kind).purge(user=user, item_id=item_id)


def trash_purge_expired(*, older_than_days: int | None = None, dry_run: bool = False) -> int:
    """The nightly cleanup's step: purge what went to the trash more than TRASH_RETENTION_DAYS ago."""
    days = settings.TRASH_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    return (knowledge_trash.trash_purge_expired(cutoff=cutoff, dry_run=dry_run)
            + chat_trash.trash_purge_expired(cutoff=cutoff, dry_run=dry_run)
            + workflows_trash.trash_purge_expired(cutoff=cutoff, dry_run=dry_run))


def conversations_retention(*, dry_run: bool = False) -> int:
    """CONVERSATION_RETENTION_DAYS (unset: keep every conversation)."""
    days = settings.CONVERSATION_RETENTION_DAYS
    if days is None:
        return 0
    return chat_trash.conversations_retention_purge(cutoff=timezone.now() - timedelta(days=days), dry_run=dry_run)


def trash_move(*, user: User, kind: str, item_id: str) -> None:
    """Move one of the user's items to the trash exactly as its own DELETE route does (operators' admin action)."""
    _kind(kind).trash(user=user, item_id=item_id)
