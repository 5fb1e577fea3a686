"""The dense side: ANN candidates per query token → one batched vector fetch → vectorised MaxSim → top-k.

Pages of every searched KB come from one ANN call on the embedder's shared collection, filtered by the KB ids
(the partition key prunes the search to their partitions).
"""

import json
import logging

import numpy as np
from django.conf import settings
from pymilvus import MilvusClient

from embeddings.collections import QUERY_LIMIT, dense_collection_ensure, in_filter, loaded_call, not_in_filter
from embeddings.exact import exact_search, matrix_get
from embeddings.page_cache import PageVectorCache, generations_get, page_cache, page_key, pages_load, pages_store
from embeddings.services import page_scope
from layra.milvus import milvus_client

logger = logging.getLogger(__name__)

QUERY_BATCH_PAGES = 256  # pages per `query` call when fetching the candidates' vectors


def candidate_limit(*, top_k: int) -> int:
    """ANN hits per query vector. Wide enough that the true top pages are among the candidates."""
    return max(settings.SEARCH_CANDIDATES_PER_TOKEN, 4 * top_k)


class Candidates:
    """Pages proposed by the ANN step, with an upper bound of each page's MaxSim score.

    For query token t, a candidate page's best retrieved similarity is its exact max (the ANN returns a page's
    nearest row first); a page not retrieved for t scores at most the t-th list's last similarity. So the
    bound is exact where known and the list floor elsewhere: re-ranking pages in bound order can stop as soon
    as the k-th exact score beats the next bound (a threshold algorithm), fetching few pages.
    """

    def __init__(self, hits: list[list[dict]], n_tokens: int):
        self.pages: dict[str, tuple[str, int, str]] = {}  # image_id → (file_id, page_number, knowledge_base_id)
        best: dict[str, np.ndarray] = {}
        floors = np.full(n_tokens, -1.0, dtype=np.float32)
        for t, per_token in enumerate(hits):
            if per_token:
                floors[t] = min(float(h["distance"]) for h in per_token)
            for hit in per_token:
                entity = hit["entity"]
                image_id = entity["image_id"]
                if image_id not in self.pages:
                    self.pages[image_id] = (entity["file_id"], int(entity["page_number"]),
                                            entity.get("knowledge_base_id", ""))
                    best[image_id] = np.full(n_tokens, np.nan, dtype=np.float32)
                row = best[image_id]
                d = float(hit["distance"])
                if np.isnan(row[t]) or d > row[t]:
                    row[t] = d
        self.image_ids = list(self.pages)
        if self.image_ids:
            known = np.stack([best[i] for i in self.image_ids])
            self.bounds = np.where(np.isnan(known), floors[None, :], known).sum(axis=1)
        else:
            self.bounds = np.zeros(0, dtype=np.float32)
        self.outside_bound = float(floors.sum())


def ann_candidates(*, client: MilvusClient, name: str, query_vectors: np.ndarray, limit: int, ef: int,
                   expr: str = "", consistency: str = "Bounded") -> Candidates:
    """One ANN call for all query vectors (loading the collection first if the server released it)."""
    kwargs = {
        "collection_name": name, "data": [v.tolist() for v in query_vectors], "anns_field": "vector",
        "limit": limit, "output_fields": ["image_id", "file_id", "page_number", "knowledge_base_id"],
        "search_params": {"metric_type": "IP", "params": {"ef": max(ef, limit)}}, "filter": expr,
        "consistency_level": consistency,
    }
    hits = loaded_call(client, name, lambda: client.search(**kwargs))
    return Candidates(hits, query_vectors.shape[0])


def page_vectors_fetch(*, client: MilvusClient, name: str, image_ids: list[str],
                       consistency: str = "Bounded") -> dict[str, np.ndarray]:
    """All vectors of these pages with `image_id in [...]` queries (never one call per page)."""
    parts: dict[str, list] = {i: [] for i in image_ids}
    for start in range(0, len(image_ids), QUERY_BATCH_PAGES):
        batch = image_ids[start:start + QUERY_BATCH_PAGES]
        expr = "image_id in [" + ",".join(json.dumps(i) for i in batch) + "]"
        iterator = client.query_iterator(
            collection_name=name, filter=expr, output_fields=["vector", "image_id"], batch_size=QUERY_LIMIT,
            consistency_level=consistency,
        )
        try:
            while rows := iterator.next():
                for r in rows:
                    parts[r["image_id"]].append(r["vector"])
        finally:
            iterator.close()
    return {i: np.asarray(rows, dtype=np.float32) for i, rows in parts.items() if rows}


def page_vectors(
    *, client: MilvusClient, name: str, generations: dict[str, str], pages: list[tuple[str, str, str]], dim: int,
    cache: PageVectorCache | None, redis=None, use_redis: bool = True, consistency: str = "Bounded",
) -> dict[str, np.ndarray]:
    """float32 vectors of these (image_id, file_id, scope) pages: process cache, then Redis, then one batched
    Milvus fetch. A scope is one KB's namespace in the collection; its generation changes with every write.

    The process tier holds float32 (ready for the product: converting a page from fp16 costs about as much as
    scoring it); the Redis tier holds fp16 (half the bytes to move)."""

    def remember(image_id: str, scope: str, matrix: np.ndarray) -> None:
        found[image_id] = matrix
        if cache is not None:
            cache.put((scope, generations.get(scope, "0"), image_id), matrix)

    found: dict[str, np.ndarray] = {}
    if cache is not None:
        keys = [(scope, generations.get(scope, "0"), i) for i, _, scope in pages]
        found = {key[2]: value for key, value in cache.get_many(keys).items()}
    missing = [p for p in pages if p[0] not in found]
    if missing and use_redis:
        for (image_id, _, scope), matrix in zip(missing, _redis_tier(missing, dim=dim, redis=redis), strict=True):
            if matrix is not None:
                remember(image_id, scope, matrix.astype(np.float32))
        missing = [p for p in missing if p[0] not in found]
    if not missing:
        return found
    fetched = page_vectors_fetch(client=client, name=name, image_ids=[i for i, _, _ in missing],
                                 consistency=consistency)
    by_file: dict[tuple[str, str], list] = {}
    for image_id, file_id, scope in missing:
        if image_id in fetched:
            remember(image_id, scope, fetched[image_id])
            by_file.setdefault((scope, file_id), []).append((image_id, fetched[image_id]))
    if use_redis:
        _redis_tier_fill(by_file, redis=redis)
    return found


def _redis_tier(pages: list[tuple[str, str, str]], *, dim: int, redis) -> list[np.ndarray | None]:
    try:
        return pages_load(keys=[page_key(scope, f, i) for i, f, scope in pages], dim=dim, redis=redis)
    except Exception:  # noqa: BLE001 - the Redis tier is a cache; Milvus has the data
        logger.warning("page vector cache unavailable", exc_info=True)
        return [None] * len(pages)


def _redis_tier_fill(by_file: dict[tuple[str, str], list], *, redis) -> None:
    try:
        for (scope, file_id), items in by_file.items():
            pages_store(name=scope, file_id=file_id, pages=items, redis=redis)
    except Exception:  # noqa: BLE001 - the Redis tier is a cache
        logger.warning("page vector cache unavailable", exc_info=True)


def maxsim_scores(*, query_vectors: np.ndarray, pages: list[np.ndarray]) -> np.ndarray:
    """Exact MaxSim of each page: the sum over query tokens of the best row's similarity (-inf for no rows).

    One BLAS product per page: no concatenated copy of every candidate's rows (that copy cost more than the
    products themselves at hundreds of pages x 750 rows).
    """
    query_t = np.ascontiguousarray(query_vectors, dtype=np.float32).T
    scores = np.full(len(pages), -np.inf, dtype=np.float32)
    for i, page in enumerate(pages):
        if page.shape[0]:
            scores[i] = (np.asarray(page, dtype=np.float32) @ query_t).max(axis=0).sum()
    return scores


def search_collection(
    *, client: MilvusClient, name: str, query_vectors: np.ndarray, top_k: int, score_threshold: float | None = None,
    knowledge_base_ids: list[str] | None = None, generations: dict[str, str] | None = None,
    cache: PageVectorCache | None = None, redis=None, use_redis: bool = True,
    ef: int | None = None, limit: int | None = None, rerank_batch: int | None = None, consistency: str = "Bounded",
    file_ids: list[str] | None = None, exclude_file_ids: list[str] | None = None,
) -> list[dict]:
    """Top pages of these KBs (every row when None) by exact MaxSim over ANN candidates:
    [{knowledge_base_id, file_id, image_id, page_number, score}], best first. `file_ids`: only pages of these
    files; `exclude_file_ids`: none of these (scalar filters inside the ANN search, so every candidate passes)."""
    limit = limit or candidate_limit(top_k=top_k)
    parts = [in_filter("knowledge_base_id", knowledge_base_ids)] if knowledge_base_ids else []
    if file_ids:
        parts.append(in_filter("file_id", file_ids))
    if exclude_file_ids:
        parts.append(not_in_filter("file_id", exclude_file_ids))
    expr = " and ".join(parts)
    candidates = ann_candidates(client=client, name=name, query_vectors=query_vectors, limit=limit,
                                ef=ef or settings.MILVUS_SEARCH_EF, expr=expr, consistency=consistency)
    if not candidates.image_ids:
        return []

    def vectors_of(ids: list[str]) -> dict[str, np.ndarray]:
        return page_vectors(
            client=client, name=name, generations=generations or {}, dim=query_vectors.shape[1], cache=cache,
            redis=redis, use_redis=use_redis, consistency=consistency, pages=[(i, candidates.pages[i][0], page_scope(
                collection=name, knowledge_base_id=candidates.pages[i][2])) for i in ids],
        )

    scored = _rerank(candidates, query_vectors=query_vectors, top_k=top_k, score_threshold=score_threshold,
                     batch=rerank_batch or max(2 * top_k, 8), vectors_of=vectors_of)
    results = []
    for score, i in scored[:top_k]:
        if score_threshold is not None and score < score_threshold:
            break
        image_id = candidates.image_ids[i]
        file_id, page_number, knowledge_base_id = candidates.pages[image_id]
        results.append({"knowledge_base_id": knowledge_base_id, "file_id": file_id, "image_id": image_id,
                        "page_number": page_number, "score": score})
    return results


def _rerank(candidates, *, query_vectors: np.ndarray, top_k: int, score_threshold: float | None, batch: int,
            vectors_of) -> list[tuple[float, int]]:
    """Exact MaxSim of the candidates in batches, best upper bound first; stops once no remaining bound can beat
    the k-th score (or reach the threshold). [(score, candidate index)], best first."""
    order = np.argsort(-candidates.bounds, kind="stable")
    empty = np.zeros((0, query_vectors.shape[1]), dtype=np.float32)
    scored: list[tuple[float, int]] = []
    position = 0
    while position < len(order):
        bound = candidates.bounds[order[position]]
        if len(scored) >= top_k and sorted((s for s, _ in scored), reverse=True)[top_k - 1] >= bound:
            break
        if score_threshold is not None and bound < score_threshold:
            break
        chunk = order[position:position + batch]
        position += len(chunk)
        ids = [candidates.image_ids[i] for i in chunk]
        vectors = vectors_of(ids)
        scores = maxsim_scores(query_vectors=query_vectors, pages=[vectors.get(i, empty) for i in ids])
        scored.extend((float(s), int(i)) for s, i in zip(scores, chunk, strict=True) if np.isfinite(s))
    scored.sort(key=lambda item: -item[0])
    return scored


def dense_search(*, embedder: str, dim: int, knowledge_base_ids: list[str], query_vectors: np.ndarray,
                 top_k: int, consistency: str = "Bounded", file_ids: list[str] | None = None,
                 exclude_file_ids: list[str] | None = None) -> list[dict]:
    """Exact-MaxSim top pages of these KBs (of these files only, when given; never of `exclude_file_ids`) in the
    embedder's collection (none when it does not exist yet).

    Small KBs at rest are scored over all their rows in process (embeddings.exact); the others, and every KB
    just written to (Strong reads: its matrix could miss rows a moment old), go through ANN + re-rank. Both give
    exact MaxSim scores, so their hits merge on one scale. Both apply the file filters before their top-k."""
    if query_vectors.shape[0] == 0 or not knowledge_base_ids or file_ids == []:
        return []
    client = milvus_client()
    name = dense_collection_ensure(embedder=embedder, dim=dim, client=client)
    scopes = {kb: page_scope(collection=name, knowledge_base_id=kb) for kb in knowledge_base_ids}
    generations = generations_get(list(scopes.values()))
    matrices, rest = [], []
    for kb, scope in scopes.items():
        matrix = None if consistency == "Strong" else matrix_get(
            client=client, name=name, scope=scope, generation=generations[scope], knowledge_base_id=kb, dim=dim)
        if matrix is not None and matrix.scannable:
            matrices.append(matrix)
        else:
            rest.append(kb)
    hits = exact_search(matrices=matrices, query_vectors=query_vectors, top_k=top_k, file_ids=file_ids,
                        exclude_file_ids=exclude_file_ids) if matrices else []
    if rest:
        hits += search_collection(client=client, name=name, query_vectors=query_vectors, top_k=top_k,
                                  knowledge_base_ids=rest, generations=generations, cache=page_cache(),
                                  consistency=consistency, file_ids=file_ids, exclude_file_ids=exclude_file_ids)
        hits.sort(key=lambda hit: -hit["score"])
    return hits[:top_k]
