"""Page retrieval: ANN candidates per query token → one batched vector fetch → vectorised MaxSim → top-k."""

import hashlib
import json
import logging

import numpy as np
from django.conf import settings
from pymilvus import MilvusClient

from accounts.models import User
from embeddings.embedders import get_embedder
from embeddings.services import collection_check, collection_name
from knowledge.selectors import knowledge_bases_for_search
from layra.milvus import milvus_client
from layra.redis import redis_client

logger = logging.getLogger(__name__)

CACHE_TTL_S = 600
QUERY_BATCH_PAGES = 256  # pages per `query` call when fetching the candidates' vectors
QUERY_LIMIT = 16384  # Milvus caps offset+limit of one query at 16384 rows


def candidate_limit(*, top_k: int) -> int:
    """ANN hits per query vector. Wide enough that the true top pages are among the candidates."""
    return max(settings.SEARCH_CANDIDATES_PER_TOKEN, 4 * top_k)


def ann_candidates(
    *, client: MilvusClient, name: str, query_vectors: np.ndarray, limit: int, ef: int
) -> dict[str, tuple[str, int]]:
    """image_id -> (file_id, page_number) of the pages whose vectors are nearest any query vector (one call)."""
    hits = client.search(
        collection_name=name, data=[v.tolist() for v in query_vectors], anns_field="vector", limit=limit,
        output_fields=["image_id", "file_id", "page_number"],
        search_params={"metric_type": "IP", "params": {"ef": max(ef, limit)}},
    )
    pages: dict[str, tuple[str, int]] = {}
    for per_token in hits:
        for hit in per_token:
            entity = hit["entity"]
            pages.setdefault(entity["image_id"], (entity["file_id"], int(entity["page_number"])))
    return pages


def page_vectors(*, client: MilvusClient, name: str, image_ids: list[str]) -> tuple[np.ndarray, np.ndarray, list]:
    """All vectors of these pages in a few `query` calls: (matrix (N, dim), page index per row, image ids)."""
    index = {image_id: i for i, image_id in enumerate(image_ids)}
    chunks: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    for start in range(0, len(image_ids), QUERY_BATCH_PAGES):
        batch = image_ids[start:start + QUERY_BATCH_PAGES]
        expr = "image_id in [" + ",".join(json.dumps(i) for i in batch) + "]"
        iterator = client.query_iterator(
            collection_name=name, filter=expr, output_fields=["vector", "image_id"], batch_size=QUERY_LIMIT,
        )
        try:
            while rows := iterator.next():
                chunks.append(np.asarray([r["vector"] for r in rows], dtype=np.float32))
                owners.append(np.fromiter((index[r["image_id"]] for r in rows), dtype=np.int64, count=len(rows)))
        finally:
            iterator.close()
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64), image_ids
    return np.concatenate(chunks), np.concatenate(owners), image_ids


def maxsim_scores(
    *, query_vectors: np.ndarray, doc_vectors: np.ndarray, owners: np.ndarray, n_pages: int
) -> np.ndarray:
    """Exact MaxSim for every page in one pass: sum over query tokens of the max dot product per page."""
    sims = doc_vectors @ query_vectors.T  # (N rows, Q tokens)
    best = np.full((n_pages, query_vectors.shape[0]), -np.inf, dtype=np.float32)
    np.maximum.at(best, owners, sims)
    return best.sum(axis=1)


def maxsim_scores_sorted(*, query_vectors: np.ndarray, doc_vectors: np.ndarray, owners: np.ndarray,
                         n_pages: int) -> np.ndarray:
    """Same as maxsim_scores, faster: rows grouped by page so the max is a reduceat."""
    order = np.argsort(owners, kind="stable")
    owners_sorted = owners[order]
    sims = doc_vectors[order] @ query_vectors.T
    starts = np.flatnonzero(np.r_[True, owners_sorted[1:] != owners_sorted[:-1]])
    maxima = np.maximum.reduceat(sims, starts, axis=0)
    scores = np.full(n_pages, -np.inf, dtype=np.float32)
    scores[owners_sorted[starts]] = maxima.sum(axis=1)
    return scores


def search_collection(
    *, client: MilvusClient, name: str, query_vectors: np.ndarray, top_k: int, ef: int | None = None,
    limit: int | None = None,
) -> list[dict]:
    """Top pages of one collection, exact MaxSim over the ANN candidates: [{file_id, image_id, page_number, score}]."""
    limit = limit or candidate_limit(top_k=top_k)
    ef = ef or settings.MILVUS_SEARCH_EF
    candidates = ann_candidates(client=client, name=name, query_vectors=query_vectors, limit=limit, ef=ef)
    if not candidates:
        return []
    image_ids = list(candidates)
    doc_vectors, owners, _ = page_vectors(client=client, name=name, image_ids=image_ids)
    if doc_vectors.shape[0] == 0:
        return []
    scores = maxsim_scores_sorted(query_vectors=query_vectors, doc_vectors=doc_vectors, owners=owners,
                                  n_pages=len(image_ids))
    k = min(top_k, len(image_ids))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [
        {"file_id": candidates[image_ids[i]][0], "image_id": image_ids[i],
         "page_number": candidates[image_ids[i]][1], "score": float(scores[i])}
        for i in top if np.isfinite(scores[i])
    ]


def _cache_key(*, embedder: str, kbs: list, query: str, top_k: int, score_threshold: float | None) -> str:
    payload = json.dumps({
        "embedder": embedder, "top_k": top_k, "threshold": score_threshold, "query": query,
        "kbs": sorted([kb.knowledge_base_id, int(kb.version or 0)] for kb in kbs),
    }, sort_keys=True)
    return "search:" + hashlib.sha256(payload.encode()).hexdigest()


def search(
    *, user: User, knowledge_base_ids: list[str], query: str, top_k: int = 5, score_threshold: float | None = None
) -> list[dict]:
    """Best pages across the user's KBs: [{knowledge_base_id, file_id, image_id, page_number, score}], best first."""
    kbs = knowledge_bases_for_search(user=user, knowledge_base_ids=knowledge_base_ids)
    embedder = get_embedder()
    key = _cache_key(embedder=embedder.name, kbs=kbs, query=query, top_k=top_k, score_threshold=score_threshold)
    cache = redis_client("cache")
    try:
        cached = cache.get(key)
    except Exception:  # noqa: BLE001 - a cache outage must not stop search
        logger.warning("search cache unavailable", exc_info=True)
        cached = None
    if cached is not None:
        return json.loads(cached)

    query_vectors = embedder.embed_queries([query])[0]
    client = milvus_client()
    results: list[dict] = []
    for kb in kbs:
        name = collection_name(knowledge_base_id=kb.knowledge_base_id)
        if query_vectors.shape[0] == 0 or not client.has_collection(collection_name=name):
            continue
        collection_check(name=name, embedder=embedder.name, dim=embedder.dim, client=client)
        for hit in search_collection(client=client, name=name, query_vectors=query_vectors, top_k=top_k):
            results.append({"knowledge_base_id": kb.knowledge_base_id, **hit})
    if score_threshold is not None:
        results = [r for r in results if r["score"] >= score_threshold]
    results.sort(key=lambda r: -r["score"])
    results = results[:top_k]
    try:
        cache.set(key, json.dumps(results), ex=CACHE_TTL_S)
    except Exception:  # noqa: BLE001
        logger.warning("search cache unavailable", exc_info=True)
    return results
