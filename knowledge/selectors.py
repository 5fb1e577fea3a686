"""Reads for knowledge bases and files. Ownership is part of every query."""

from accounts.models import User
from knowledge.documents import KnowledgeBase
from layra.errors import NotFound


def knowledge_base_get(*, user: User, knowledge_base_id: str) -> KnowledgeBase:
    kb = KnowledgeBase.objects(knowledge_base_id=knowledge_base_id, username=user.username, is_delete=False).first()
    if kb is None:
        raise NotFound("Knowledge base not found.")
    return kb


def knowledge_bases_for_search(*, user: User, knowledge_base_ids: list[str]) -> list[KnowledgeBase]:
    """The user's live KBs with these ids (temporary ones included); any other id is a 404."""
    wanted = list(dict.fromkeys(knowledge_base_ids))
    kbs = list(KnowledgeBase.objects(knowledge_base_id__in=wanted, username=user.username, is_delete=False))
    if len(kbs) != len(wanted):
        raise NotFound("Knowledge base not found.")
    return kbs
