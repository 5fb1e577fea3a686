"""Hybrid page search: the dense side (late-interaction MaxSim) and the lexical side (BM25), fused (fuse()).

Pages without a text layer have no lexical row and rank by the dense side alone; a page only the lexical side
finds (an identifier the token vectors miss) still makes the list. Both sides run on the same KB ids.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from django.conf import settings

from embeddings.fusion import FusionWeights, convex, rrf
from embeddings.lexical import lexical_index
from embeddings.retrieval import dense_search
from layra.process_local import ProcessLocal

MODES = ("hybrid", "dense", "lexical")
_pool = ProcessLocal(lambda: ThreadPoolExecutor(4, thread_name_prefix="search-side")).get


def fusion_weights() -> FusionWeights:
    return FusionWeights(dense=settings.SEARCH_DENSE_WEIGHT, lexical=settings.SEARCH_LEXICAL_WEIGHT,
                         k=settings.SEARCH_RRF_K)


def fusion_depth(*, top_k: int) -> int:
    """How many pages each side proposes to the fusion (a page ranked low on one side may win on the other)."""
    return max(settings.SEARCH_FUSION_DEPTH, top_k)


def fuse(*, dense: list[dict], lexical: list, method: str | None = None, weights: FusionWeights | None = None,
         lexical_weight: float | None = None) -> dict[str, float]:
    """{image_id: fused score} of the two sides' lists (each best first), by SEARCH_FUSION unless given."""
    method = method or settings.SEARCH_FUSION
    if method == "convex":
        weight = settings.SEARCH_LEXICAL_ALPHA if lexical_weight is None else lexical_weight
        return convex(dense={h["image_id"]: h["score"] for h in dense},
                      lexical={h.image_id: h.score for h in lexical}, lexical_weight=weight)
    return rrf(dense=[h["image_id"] for h in dense], lexical=[h.image_id for h in lexical],
               weights=weights or fusion_weights())


def pages_search(*, knowledge_base_ids: list[str], query: str, query_vectors: np.ndarray | None, embedder: str,
                 dim: int, top_k: int, mode: str = "hybrid", score_threshold: float | None = None,
                 strong: bool = False, file_ids: list[str] | None = None,
                 exclude_file_ids: list[str] | None = None) -> list[dict]:
    """[{knowledge_base_id, file_id, image_id, page_number, score, dense_score, lexical_score}], best first.

    `score` is the fused score in [0, 1] (hybrid) or the side's own score (dense: MaxSim, lexical: BM25).
    `strong`: read every write acknowledged so far (a KB written to moments ago); otherwise Milvus' bounded
    staleness, which does not wait for the server's next time tick (up to 200 ms). `file_ids`: only pages of these
    files; `exclude_file_ids`: never pages of these (files in the trash, versions still being ingested); both
    filtered inside both searches (never after their top-k)."""
    consistency = "Strong" if strong else "Bounded"
    depth = top_k if mode != "hybrid" else fusion_depth(top_k=top_k)
    lexical_future = None
    if mode in ("hybrid", "lexical"):  # the lexical side runs beside the dense one (both mostly wait on I/O)
        lexical_future = _pool().submit(lexical_index().search, knowledge_base_ids=knowledge_base_ids, query=query,
                                        limit=depth, consistency=consistency, file_ids=file_ids,
                                        exclude_file_ids=exclude_file_ids)
    dense = []
    if mode in ("hybrid", "dense") and query_vectors is not None:
        dense = dense_search(embedder=embedder, dim=dim, knowledge_base_ids=knowledge_base_ids,
                             query_vectors=query_vectors, top_k=depth, consistency=consistency, file_ids=file_ids,
                             exclude_file_ids=exclude_file_ids)
    lexical = lexical_future.result() if lexical_future else []

    pages: dict[str, dict] = {}
    for hit in dense:
        pages[hit["image_id"]] = {**hit, "dense_score": hit["score"], "lexical_score": None}
    for hit in lexical:
        page = pages.setdefault(hit.image_id, {
            "knowledge_base_id": hit.knowledge_base_id, "file_id": hit.file_id, "image_id": hit.image_id,
            "page_number": hit.page_number, "dense_score": None})
        page["lexical_score"] = hit.score
    if mode == "dense":
        ranked = [(p, p["dense_score"]) for p in pages.values()]
    elif mode == "lexical":
        ranked = [(p, p["lexical_score"]) for p in pages.values()]
    else:
        fused = fuse(dense=dense, lexical=lexical)
        ranked = [(p, fused[key]) for key, p in pages.items()]
    ranked.sort(key=lambda item: -item[1])
    results = []
    for page, score in ranked[:top_k]:
        if score_threshold is not None and score < score_threshold:
            break
        results.append({**page, "score": float(score)})
    return results
