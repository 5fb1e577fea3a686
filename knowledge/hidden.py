"""Which files of a knowledge base a search skips although their vectors are indexed: files in the trash and new
versions still being ingested (`KnowledgeBase.hidden_file_ids`).

The list lives on the KB document and changes in the same write as the KB's `version` (part of the search cache
key): one atomic write on one document, so a search reads either the list before a change or the one after, never
a mix. That is what makes a version swap show the old version or the new one, never both (knowledge.versions).
"""

from knowledge.documents import File, KnowledgeBase, utcnow
from knowledge.invalidation import kb_cache_invalidate

_ATTEMPTS = 50


def kb_hidden_change(*, knowledge_base_id: str, hide: list[str] = (), show: list[str] = ()) -> None:
    """Hide and show these file ids in one write that also bumps the KB's version (compare-and-set on the version,
    retried when another write came in between). A missing KB is left alone."""
    hide, show = set(hide), set(show)
    for _ in range(_ATTEMPTS):
        kb = KnowledgeBase.objects(knowledge_base_id=knowledge_base_id).only("version", "hidden_file_ids").first()
        if kb is None:
            return
        current = list(kb.hidden_file_ids or [])
        wanted = [i for i in current if i not in show] + sorted(hide - set(current) - show)
        if wanted == current:
            return
        if KnowledgeBase.objects(knowledge_base_id=knowledge_base_id, version=kb.version).update_one(
                set__hidden_file_ids=wanted, inc__version=1, set__last_modify_at=utcnow()):
            kb_cache_invalidate(knowledge_base_id=knowledge_base_id)
            return
    raise RuntimeError(f"knowledge base {knowledge_base_id}: its hidden files could not be changed")


def kb_hidden_forget(*, knowledge_base_id: str, file_ids: list[str]) -> None:
    """Purged files leave the list (they have no vectors any more): no version bump, nothing a search sees."""
    KnowledgeBase.objects(knowledge_base_id=knowledge_base_id).update_one(pull_all__hidden_file_ids=list(file_ids))
    kb_cache_invalidate(knowledge_base_id=knowledge_base_id)


def file_to_trash(*, file: File, replaced_by: str | None = None, hidden: bool = False) -> None:
    """The record's move to the trash; `hidden`: the KB's hidden list already has it (a version swap)."""
    if not hidden:
        kb_hidden_change(knowledge_base_id=file.knowledge_db_id, hide=[file.file_id])
    File.objects(file_id=file.file_id).update_one(set__is_delete=True, set__deleted_at=utcnow(),
                                                  set__replaced_by=replaced_by, set__trashed_with=None)
    kb_cache_invalidate(knowledge_base_id=file.knowledge_db_id)
