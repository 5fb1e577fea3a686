"""Per knowledge base: pages in Mongo vs vectors in Milvus vs objects in storage."""

from dataclasses import asdict, dataclass, field

from embeddings.lexical import lexical_index
from embeddings.services import dense_page_ids
from knowledge.documents import File, KnowledgeBase
from knowledge.keys import kb_prefixes
from layra.storage import object_keys


@dataclass
class KnowledgeBaseReport:
    knowledge_base_id: str
    in_trash: bool = False  # the KB is in the trash (checked all the same: a restore brings it back whole)
    pages: int = 0  # pages of completed files, those in the trash included (Mongo)
    vector_pages: int = 0  # distinct image ids with vectors (Milvus)
    objects: int = 0  # objects under the KB prefix (storage)
    pages_without_vectors: list[str] = field(default_factory=list)  # image ids
    vectors_without_page: list[str] = field(default_factory=list)  # image ids
    text_pages_not_indexed: list[str] = field(default_factory=list)  # pages with text missing from the lexical index
    missing_objects: list[str] = field(default_factory=list)  # keys named by records
    orphan_objects: list[str] = field(default_factory=list)  # keys under the prefix no record names

    @property
    def ok(self) -> bool:
        return not (self.pages_without_vectors or self.vectors_without_page or self.missing_objects
                    or self.orphan_objects or self.text_pages_not_indexed)

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def expected_keys(file: File) -> set[str]:
    return {file.minio_filename, *(p.minio_filename for p in file.images)}


def knowledge_base_check(*, knowledge_base_id: str) -> KnowledgeBaseReport:
    kb = KnowledgeBase.objects(knowledge_base_id=knowledge_base_id).first()
    report = KnowledgeBaseReport(knowledge_base_id=knowledge_base_id)
    report.in_trash = bool(kb is not None and kb.is_delete)
    # Files in the trash keep their pages, vectors and objects until purged: they count as expected, never orphans.
    files = list(File.objects(knowledge_db_id=knowledge_base_id))
    indexed = {p.images_id for f in files if f.status == "completed" for p in f.images}
    report.pages = len(indexed)
    vector_ids: set[str] = set()
    if kb is not None and kb.embedder:
        embedder, _, dim = kb.embedder.partition(":")
        vector_ids = set(dense_page_ids(knowledge_base_id=knowledge_base_id, embedder=embedder, dim=int(dim)))
    with_text = {p.images_id for f in files if f.status == "completed" for p in f.images if (p.text or "").strip()}
    report.text_pages_not_indexed = sorted(with_text - set(lexical_index().page_ids(
        knowledge_base_id=knowledge_base_id)))
    report.vector_pages = len(vector_ids)
    report.pages_without_vectors = sorted(indexed - vector_ids)
    report.vectors_without_page = sorted(vector_ids - indexed)
    expected = set().union(*(expected_keys(f) for f in files)) if files else set()
    present: set[str] = set()
    if kb is not None:
        present = {key for prefix in kb_prefixes(kb) for key in object_keys(prefix=prefix)}
    report.objects = len(present)
    report.missing_objects = sorted(expected - present)
    report.orphan_objects = sorted(present - expected)
    return report


def consistency_check(*, knowledge_base_ids: list[str] | None = None) -> list[KnowledgeBaseReport]:
    """Reports for the given KBs (default: every KB, those in the trash included)."""
    if knowledge_base_ids is None:
        knowledge_base_ids = [kb.knowledge_base_id for kb in KnowledgeBase.objects().only("knowledge_base_id")]
    return [knowledge_base_check(knowledge_base_id=kb_id) for kb_id in knowledge_base_ids]
