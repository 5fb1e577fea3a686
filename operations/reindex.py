"""Re-embed stored pages into Milvus, or backfill the lexical index: a file, a KB, a user's KBs or everything.

With the current embedder a file's vectors are replaced in place (vectors_replace_file). With another
embedder a KB's rows are written to that embedder's collection while search reads the recorded one; the KB
switches to the new embedder when every file is written, then its old rows are deleted.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from embeddings.embedders import Embedder, embedder_build, get_embedder
from embeddings.services import (
    embedder_tag,
    texts_replace_file,
    vectors_delete_knowledge_base,
    vectors_replace_file,
)
from knowledge.documents import File, KnowledgeBase
from knowledge.outputs import page_images
from knowledge.services import kb_version_bump

logger = logging.getLogger(__name__)


@dataclass
class ReindexReport:
    knowledge_bases: int = 0
    files: int = 0
    pages: int = 0
    rows: int = 0
    switched: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _page_rows(file: File, embedder: Embedder, *, batch: int = 32) -> list[tuple[str, int, object]]:
    pages = sorted(file.images, key=lambda p: p.page_number)
    rows: list = []
    for start in range(0, len(pages), batch):
        chunk = pages[start:start + batch]
        images = page_images(chunk, embedder=embedder)
        vectors = embedder.embed_images(images, texts=[p.text or "" for p in chunk])
        rows.extend((p.images_id, p.page_number, v) for p, v in zip(chunk, vectors, strict=True))
    return rows


def indexable_files(knowledge_base_id: str):
    return File.objects(knowledge_db_id=knowledge_base_id, is_delete=False, status="completed")


def _texts_index(file: File) -> int:
    return texts_replace_file(knowledge_base_id=file.knowledge_db_id, username=file.username, file_id=file.file_id,
                              pages=[(p.images_id, p.page_number, p.text or "") for p in file.images])


def reindex_file(*, file_id: str, dry_run: bool = False, report: ReindexReport | None = None,
                 embedder: Embedder | None = None) -> ReindexReport:
    """Replace one completed file's vectors (current embedder, or `embedder`) and its lexical rows."""
    report = report or ReindexReport()
    file = File.objects(file_id=file_id, is_delete=False).first()
    if file is None or file.status != "completed":
        report.errors.append(f"file {file_id}: not a live completed file")
        return report
    report.files += 1
    report.pages += len(file.images)
    if dry_run:
        return report
    embedder = embedder or get_embedder()
    rows = _page_rows(file, embedder)
    report.rows += vectors_replace_file(knowledge_base_id=file.knowledge_db_id, username=file.username,
                                        file_id=file.file_id, pages=rows, embedder=embedder)
    _texts_index(file)
    if embedder.name == get_embedder().name:
        kb_version_bump(knowledge_base_id=file.knowledge_db_id)
    return report


def reindex_knowledge_base(*, knowledge_base_id: str, embedder_name: str | None = None, dry_run: bool = False,
                           report: ReindexReport | None = None, on_file: Callable[[], None] | None = None
                           ) -> ReindexReport:
    """Re-embed every completed file of a KB. With another embedder the rows go to that embedder's collection
    while search keeps reading the KB's recorded one; the KB switches when all are written, then its old rows go."""
    report = report or ReindexReport()
    kb = KnowledgeBase.objects(knowledge_base_id=knowledge_base_id, is_delete=False).first()
    if kb is None:
        report.errors.append(f"knowledge base {knowledge_base_id}: not found")
        return report
    report.knowledge_bases += 1
    current = get_embedder()
    embedder = current if embedder_name in (None, current.name) else embedder_build(name=embedder_name)
    switching = kb.embedder not in (None, embedder_tag(embedder=embedder.name, dim=embedder.dim))
    failed = False
    for file in indexable_files(knowledge_base_id):
        try:
            reindex_file(file_id=file.file_id, dry_run=dry_run, report=report, embedder=embedder)
        except Exception as exc:  # noqa: BLE001 - one broken file must not stop a KB; it is reported
            logger.exception("reindex of file %s failed", file.file_id)
            report.errors.append(f"file {file.file_id}: {exc.__class__.__name__}: {exc}")
            failed = True
        if on_file:
            on_file()
    if switching and not dry_run and not failed:
        old_name, _, old_dim = kb.embedder.partition(":")
        kb_version_bump(knowledge_base_id=knowledge_base_id, embedder=embedder_tag(embedder=embedder.name,
                                                                                  dim=embedder.dim))
        vectors_delete_knowledge_base(knowledge_base_id=knowledge_base_id, embedder=old_name, dim=int(old_dim))
        report.switched.append(knowledge_base_id)
    return report


def lexical_backfill(*, knowledge_base_ids: list[str] | None = None, report: ReindexReport | None = None,
                     on_file: Callable[[], None] | None = None) -> ReindexReport:
    """Index the text layer of every completed file (from Mongo) in the lexical index; no page is re-embedded.

    File by file, each replaced whole: a KB mid-backfill answers searches throughout (dense side complete,
    lexical side growing)."""
    report = report or ReindexReport()
    if knowledge_base_ids is None:
        knowledge_base_ids = knowledge_base_ids_of()
    for kb_id in knowledge_base_ids:
        report.knowledge_bases += 1
        for file in indexable_files(kb_id):
            report.files += 1
            report.pages += len(file.images)
            report.rows += _texts_index(file)
            if on_file:
                on_file()
        kb_version_bump(knowledge_base_id=kb_id)
    return report


def knowledge_base_ids_of(*, username: str | None = None) -> list[str]:
    qs = KnowledgeBase.objects(is_delete=False)
    if username:
        qs = qs.filter(username=username)
    return [kb.knowledge_base_id for kb in qs.only("knowledge_base_id")]


def reindex_many(*, knowledge_base_ids: list[str], embedder_name: str | None = None, dry_run: bool = False,
                 on_file: Callable[[], None] | None = None) -> ReindexReport:
    report = ReindexReport()
    for kb_id in knowledge_base_ids:
        reindex_knowledge_base(knowledge_base_id=kb_id, embedder_name=embedder_name, dry_run=dry_run,
                               report=report, on_file=on_file)
    return report
