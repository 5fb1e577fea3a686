"""The dense side's fast path: exact MaxSim over every row of a small knowledge base, in process.

An ANN call costs the same ~80-100 ms on a 50-page KB as on a 1,000-page one (the server's per-call work, then
pymilvus building thousands of hit objects), while scoring every row of a 50-page KB is one BLAS product of a
few milliseconds. So a KB whose whole matrix fits SEARCH_EXACT_MAX_MB is held in process, keyed by its write
generation (bumped after every write lands, so a cached matrix is never older than its key), and scored
exactly: recall 1.0 against exact MaxSim by construction. Larger KBs keep the ANN + re-rank path.
"""

from dataclasses import dataclass

import numpy as np
from django.conf import settings
from pymilvus import MilvusClient

from embeddings.collections import filter_quote, rows_count, rows_matching
from layra.lru import SizedLRU
from layra.process_local import ProcessLocal


@dataclass(frozen=True)
class KnowledgeBaseMatrix:
    """Every vector row of one KB in one collection, grouped by page; `vectors` is None when the KB is too big
    to scan (the ANN path serves it)."""
    knowledge_base_id: str
    vectors: np.ndarray | None
    starts: np.ndarray  # index of each page's first row in `vectors`
    pages: list[tuple[str, str, int]]  # (image_id, file_id, page_number), in `starts` order

    @property
    def scannable(self) -> bool:
        return self.vectors is not None

    @property
    def nbytes(self) -> int:
        return 256 + (0 if self.vectors is None else self.vectors.nbytes + self.starts.nbytes + 128 * len(self.pages))


def _new_cache() -> SizedLRU:
    return SizedLRU(max_bytes=settings.SEARCH_EXACT_CACHE_MB * 1024 * 1024, size=lambda m: m.nbytes)


matrix_cache = ProcessLocal(_new_cache).get


def matrix_build(*, client: MilvusClient, name: str, knowledge_base_id: str, dim: int) -> KnowledgeBaseMatrix:
    """The KB's rows read strongly (every acknowledged write, so nothing older than the generation read before),
    or a too-big marker when they exceed SEARCH_EXACT_MAX_MB."""
    expr = f"knowledge_base_id == {filter_quote(knowledge_base_id)}"
    count = rows_count(client, name, expr=expr)
    if count * dim * 4 > settings.SEARCH_EXACT_MAX_MB * 1024 * 1024:
        return KnowledgeBaseMatrix(knowledge_base_id, None, np.zeros(0, dtype=np.int64), [])
    rows = rows_matching(client, name, expr=expr, fields=["image_id", "file_id", "page_number", "vector"],
                         count=count)
    by_page: dict[str, list] = {}
    meta: dict[str, tuple[str, str, int]] = {}
    for row in rows:
        by_page.setdefault(row["image_id"], []).append(row["vector"])
        meta.setdefault(row["image_id"], (row["image_id"], row["file_id"], int(row["page_number"])))
    pages = [meta[i] for i in by_page]
    sizes = np.array([len(v) for v in by_page.values()], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if len(sizes) else np.zeros(0, dtype=np.int64)
    vectors = (np.asarray([v for page in by_page.values() for v in page], dtype=np.float32).reshape(-1, dim)
               if rows else np.zeros((0, dim), dtype=np.float32))
    return KnowledgeBaseMatrix(knowledge_base_id, vectors, starts, pages)


def matrix_get(*, client: MilvusClient, name: str, scope: str, generation: str, knowledge_base_id: str,
               dim: int) -> KnowledgeBaseMatrix | None:
    """The KB's matrix at this generation (built on first use in this process), None when the fast path is off."""
    if settings.SEARCH_EXACT_MAX_MB <= 0:
        return None
    key = (scope, generation)
    cache = matrix_cache()
    matrix = cache.get(key)
    if matrix is None:
        matrix = matrix_build(client=client, name=name, knowledge_base_id=knowledge_base_id, dim=dim)
        cache.put(key, matrix)
    return matrix


def exact_search(*, matrices: list[KnowledgeBaseMatrix], query_vectors: np.ndarray, top_k: int,
                 file_ids: list[str] | None = None, exclude_file_ids: list[str] | None = None) -> list[dict]:
    """Top pages of these KBs by exact MaxSim: one product per KB, then each page's best row per query token.
    Only pages of `file_ids` (when given) and none of `exclude_file_ids` rank, left out before the top-k."""
    query_t = np.ascontiguousarray(query_vectors, dtype=np.float32).T
    allowed = set(file_ids) if file_ids is not None else None
    excluded = set(exclude_file_ids or ())
    hits: list[tuple[float, KnowledgeBaseMatrix, int]] = []
    for matrix in matrices:
        if not matrix.pages:
            continue
        scores = np.maximum.reduceat(matrix.vectors @ query_t, matrix.starts, axis=0).sum(axis=1)
        candidates = np.arange(len(matrix.pages))
        if allowed is not None or excluded:
            candidates = candidates[[(allowed is None or file_id in allowed) and file_id not in excluded
                                     for _image_id, file_id, _n in matrix.pages]]
        best = candidates[np.argsort(-scores[candidates], kind="stable")[:top_k]]
        hits.extend((float(scores[i]), matrix, int(i)) for i in best)
    hits.sort(key=lambda hit: -hit[0])
    results = []
    for score, matrix, i in hits[:top_k]:
        image_id, file_id, page_number = matrix.pages[i]
        results.append({"knowledge_base_id": matrix.knowledge_base_id, "file_id": file_id, "image_id": image_id,
                        "page_number": page_number, "score": score})
    return results
