"""Keeping cached KB reads fresh after writes: drop a KB's cached summary and counts, a user's cached KB ids, and
bump a KB's version (part of the search cache key) when what a search finds changes."""

from accounts.models import User
from knowledge.documents import KnowledgeBase, utcnow
from knowledge.selectors import counts_cache_key, own_ids_cache_key, summary_cache_key
from layra import cache


def kb_cache_invalidate(*, knowledge_base_id: str) -> None:
    """After any write to a KB, its version or its files: its cached summary and counts are stale."""
    cache.drop(summary_cache_key(knowledge_base_id), counts_cache_key(knowledge_base_id))


def knowledge_base_list_invalidate(*, user: User) -> None:
    """After a KB of the user's is created or deleted: their cached list of KB ids is stale."""
    cache.drop(own_ids_cache_key(user.username))


def kb_version_bump(*, knowledge_base_id: str, **also_set) -> None:
    """A change to what a search of the KB finds: bump its version (the search cache key holds it), set
    `also_set` fields in the same write, and drop its cached summary, which carries the version."""
    also_set.setdefault("last_modify_at", utcnow())  # search reads strongly for a while after (knowledge.search)
    KnowledgeBase.objects(knowledge_base_id=knowledge_base_id).update_one(
        inc__version=1, **{f"set__{name}": value for name, value in also_set.items()})
    kb_cache_invalidate(knowledge_base_id=knowledge_base_id)
