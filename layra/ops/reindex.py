"""Re-embed stored pages into Milvus: a file, a KB, a user's KBs or everything.

With the current embedder a file's vectors are replaced in place (vectors_replace_file). With another
embedder a KB is built into a side collection first and then swapped in (drop + rename), so search on the
old collection keeps working until the switch.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from embeddings.embedders import Embedder, embedder_build, get_embedder
from embeddings.page_cache import generation_bump, pages_forget
from embeddings.services import collection_ensure, collection_name, vectors_insert, vectors_replace_file
from knowledge.documents import File, KnowledgeBase
from knowledge.pipeline import page_images
from knowledge.services import kb_version_bump
from layra.milvus import milvus_client

logger = logging.getLogger(__name__)
SIDE_SUFFIX = "-reindex"


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


def reindex_file(*, file_id: str, dry_run: bool = False, report: ReindexReport | None = None) -> ReindexReport:
    """Replace one completed file's vectors with the current embedder's."""
    report = report or ReindexReport()
    file = File.objects(file_id=file_id, is_delete=False).first()
    if file is None or file.status != "completed":
        report.errors.append(f"file {file_id}: not a live completed file")
        return report
    report.files += 1
    report.pages += len(file.images)
    if dry_run:
        return report
    rows = _page_rows(file, get_embedder())
    report.rows += vectors_replace_file(knowledge_base_id=file.knowledge_db_id, file_id=file.file_id, pages=rows)
    kb_version_bump(knowledge_base_id=file.knowledge_db_id)
    return report


def reindex_knowledge_base(*, knowledge_base_id: str, embedder_name: str | None = None, dry_run: bool = False,
                           report: ReindexReport | None = None, on_file: Callable[[], None] | None = None
                           ) -> ReindexReport:
    """Re-embed every completed file of a KB; with embedder_name, build a side collection and switch."""
    report = report or ReindexReport()
    kb = KnowledgeBase.objects(knowledge_base_id=knowledge_base_id, is_delete=False).first()
    if kb is None:
        report.errors.append(f"knowledge base {knowledge_base_id}: not found")
        return report
    report.knowledge_bases += 1
    files = list(indexable_files(knowledge_base_id))
    if embedder_name is None:
        for file in files:
            try:
                reindex_file(file_id=file.file_id, dry_run=dry_run, report=report)
            except Exception as exc:  # noqa: BLE001 - one broken file must not stop a KB; it is reported
                logger.exception("reindex of file %s failed", file.file_id)
                report.errors.append(f"file {file.file_id}: {exc.__class__.__name__}: {exc}")
            if on_file:
                on_file()
        return report

    current = get_embedder()
    embedder = current if current.name == embedder_name else embedder_build(name=embedder_name)
    report.files += len(files)
    report.pages += sum(len(f.images) for f in files)
    if dry_run:
        return report
    client = milvus_client()
    side = collection_name(knowledge_base_id=knowledge_base_id + SIDE_SUFFIX)
    if client.has_collection(collection_name=side):
        client.drop_collection(collection_name=side)
    collection_ensure(knowledge_base_id=knowledge_base_id + SIDE_SUFFIX, embedder=embedder.name, dim=embedder.dim,
                      client=client)
    for file in files:
        report.rows += vectors_insert(name=side, file_id=file.file_id, pages=_page_rows(file, embedder),
                                      client=client)
        if on_file:
            on_file()
    target = collection_name(knowledge_base_id=knowledge_base_id)
    # The switch: the old collection serves search until here.
    if client.has_collection(collection_name=target):
        client.drop_collection(collection_name=target)
    client.rename_collection(old_name=side, new_name=target)
    client.load_collection(collection_name=target)
    pages_forget(name=target)
    generation_bump(target)
    kb_version_bump(knowledge_base_id=knowledge_base_id, embedder=f"{embedder.name}:{embedder.dim}")
    report.switched.append(knowledge_base_id)
    return report


def knowledge_base_ids(*, username: str | None = None) -> list[str]:
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
