"""Removing a file or knowledge base in the trash everywhere: vectors, page images, objects, records and jobs
(a purge from the trash, the nightly cleanup, the purge tasks)."""

from embeddings.services import knowledge_base_index_delete
from knowledge import progress
from knowledge.documents import File, KnowledgeBase
from knowledge.hidden import kb_hidden_forget
from knowledge.invalidation import kb_cache_invalidate
from knowledge.keys import file_prefix_of, kb_prefixes
from knowledge.models import IngestionJob
from knowledge.outputs import file_outputs_remove
from layra.storage import objects_delete_prefix


def _jobs_forget(jobs) -> None:
    for task_id in jobs.values_list("task_id", flat=True):
        progress.progress_delete(task_id=task_id)
    jobs.delete()


def file_purge(*, file_id: str) -> None:
    """Remove a deleted file's vectors, objects, record and jobs. Safe to repeat."""
    file = File.objects(file_id=file_id).first()
    if file is None or not file.is_delete:
        return
    file_outputs_remove(file)
    objects_delete_prefix(prefix=file_prefix_of(file))
    _jobs_forget(IngestionJob.objects.filter(file_id=file_id))
    file.delete()
    kb_hidden_forget(knowledge_base_id=file.knowledge_db_id, file_ids=[file_id])


def knowledge_base_purge(*, knowledge_base_id: str) -> None:
    """Remove a deleted KB everywhere: collection, objects, file records, jobs. Safe to repeat."""
    kb = KnowledgeBase.objects(knowledge_base_id=knowledge_base_id).first()
    if kb is None or not kb.is_delete:
        return
    knowledge_base_index_delete(knowledge_base_id=knowledge_base_id)
    for prefix in kb_prefixes(kb):
        objects_delete_prefix(prefix=prefix)
    _jobs_forget(IngestionJob.objects.filter(knowledge_base_id=knowledge_base_id))
    File.objects(knowledge_db_id=knowledge_base_id).delete()
    kb.delete()
    kb_cache_invalidate(knowledge_base_id=knowledge_base_id)
