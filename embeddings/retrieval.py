"""Page retrieval: ANN candidates per query token → one batched vector fetch → vectorised MaxSim → top-k."""

import hashlib
import json
import logging

import numpy as np
from django.conf import settings
from pymilvus import MilvusClient, MilvusException

from accounts.models import User
from embeddings.embedders import get_embedder
from embeddings.page_cache import PageVectorCache, generations_get, page_cache, page_key, pages_load, pages_store
from embeddings.services import collection_check, collection_name
from knowledge.selectors import knowledge_bases_for_search
from layra.metrics import SEARCH_LATENCY
from layra.milvus import milvus_client
from layra.redis import redis_client

logger = logging.getLogger(__name__)

CACHE_TTL_S = 600
QUERY_BATCH_PAGES = 256  # pages per `query` call when fetching the candidates' vectors
QUERY_LIMIT = 16384  # Milvus caps offset+limit of one query at 16384 rows


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
        self.pages: dict[str, tuple[str, int]] = {}
        best: dict[str, np.ndarray] = {}
        floors = np.full(n_tokens, -1.0, dtype=np.float32)
        for t, per_token in enumerate(hits):
            if per_token:
                floors[t] = min(float(h["distance"]) for h in per_token)
            for hit in per_token:
                entity = hit["entity"]
                image_id = entity["image_id"]
                if image_id not in self.pages:
                    self.pages[image_id] = (entity["file_id"], int(entity["page_number"]))
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


def ann_candidates(*, client: MilvusClient, name: str, query_vectors: np.ndarray, limit: int, ef: int) -> Candidates:
    """One ANN call for all query vectors (loading the collection first if the server released it)."""
    kwargs = {
        "collection_name": name, "data": [v.tolist() for v in query_vectors], "anns_field": "vector",
        "limit": limit, "output_fields": ["image_id", "file_id", "page_number"],
        "search_params": {"metric_type": "IP", "params": {"ef": max(ef, limit)}},
    }
    try:
        hits = client.search(**kwargs)
    except MilvusException as exc:
        if "load" not in str(exc).lower() and "released" not in str(exc).lower():
            raise
        client.load_collection(collection_name=name)
        hits = client.search(**kwargs)
    return Candidates(hits, query_vectors.shape[0])


def page_vectors_fetch(*, client: MilvusClient, name: str, image_ids: list[str]) -> dict[str, np.ndarray]:
    """All vectors of these pages with `image_id in [...]` queries (never one call per page)."""
    parts: dict[str, list] = {i: [] for i in image_ids}
    for start in range(0, len(image_ids), QUERY_BATCH_PAGES):
        batch = image_ids[start:start + QUERY_BATCH_PAGES]
        expr = "image_id in [" + ",".join(json.dumps(i) for i in batch) + "]"
        iterator = client.query_iterator(
            collection_name=name, filter=expr, output_fields=["vector", "image_id"], batch_size=QUERY_LIMIT,
        )
        try:
            while rows := iterator.next():
                for r in rows:
                    parts[r["image_id"]].append(r["vector"])
        finally:
            iterator.close()
    return {i: np.asarray(rows, dtype=np.float32) for i, rows in parts.items() if rows}


def page_vectors(
    *, client: MilvusClient, name: str, generation: str, pages: list[tuple[str, str]], dim: int,
    cache: PageVectorCache | None, redis=None, use_redis: bool = True,
) -> dict[str, np.ndarray]:
    """float32 vectors of these (image_id, file_id) pages: process cache, then Redis, then one batched Milvus fetch.

    The process tier holds float32 (ready for the product: converting a page from fp16 costs about as much as
    scoring it); the Redis tier holds fp16 (half the bytes to move)."""
    found: dict[str, np.ndarray] = {}
    if cache is not None:
        found = {key[2]: value for key, value in cache.get_many([(name, generation, i) for i, _ in pages]).items()}
    missing = [(i, f) for i, f in pages if i not in found]
    if missing and use_redis:
        try:
            loaded = pages_load(keys=[page_key(name, f, i) for i, f in missing], dim=dim, redis=redis)
        except Exception:  # noqa: BLE001 - the Redis tier is a cache; Milvus has the data
            logger.warning("page vector cache unavailable", exc_info=True)
            loaded = [None] * len(missing)
        for (image_id, _), matrix in zip(missing, loaded, strict=True):
            if matrix is not None:
                matrix = matrix.astype(np.float32)
                found[image_id] = matrix
                if cache is not None:
                    cache.put((name, generation, image_id), matrix)
        missing = [(i, f) for i, f in missing if i not in found]
    if missing:
        fetched = page_vectors_fetch(client=client, name=name, image_ids=[i for i, _ in missing])
        by_file: dict[str, list] = {}
        for image_id, file_id in missing:
            if image_id in fetched:
                matrix = fetched[image_id]
                found[image_id] = matrix
                by_file.setdefault(file_id, []).append((image_id, matrix))
                if cache is not None:
                    cache.put((name, generation, image_id), matrix)
        if use_redis:
            try:
                for file_id, items in by_file.items():
                    pages_store(name=name, file_id=file_id, pages=items, redis=redis)
            except Exception:  # noqa: BLE001
                logger.warning("page vector cache unavailable", exc_info=True)
    return found


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
    generation: str = "0", cache: PageVectorCache | None = None, redis=None, use_redis: bool = True,
    ef: int | None = None, limit: int | None = None, rerank_batch: int | None = None,
) -> list[dict]:
    """Top pages of one collection, exact MaxSim over ANN candidates: [{file_id, image_id, page_number, score}]."""
    limit = limit or candidate_limit(top_k=top_k)
    ef = ef or settings.MILVUS_SEARCH_EF
    candidates = ann_candidates(client=client, name=name, query_vectors=query_vectors, limit=limit, ef=ef)
    if not candidates.image_ids:
        return []
    order = np.argsort(-candidates.bounds, kind="stable")
    batch = rerank_batch or max(2 * top_k, 8)
    scored: list[tuple[float, int]] = []
    position = 0
    while position < len(order):
        if len(scored) >= top_k:
            kth = sorted((s for s, _ in scored), reverse=True)[top_k - 1]
            if kth >= candidates.bounds[order[position]]:
                break
        if score_threshold is not None and candidates.bounds[order[position]] < score_threshold:
            break
        chunk = order[position:position + batch]
        position += len(chunk)
        ids = [candidates.image_ids[i] for i in chunk]
        vectors = page_vectors(
            client=client, name=name, generation=generation, dim=query_vectors.shape[1], cache=cache, redis=redis,
            use_redis=use_redis, pages=[(i, candidates.pages[i][0]) for i in ids],
        )
        empty = np.zeros((0, query_vectors.shape[1]), dtype=np.float32)
        scores = maxsim_scores(query_vectors=query_vectors, pages=[vectors.get(i, empty) for i in ids])
        scored.extend((float(s), int(i)) for s, i in zip(scores, chunk, strict=True) if np.isfinite(s))
    scored.sort(key=lambda item: -item[0])
    results = []
    for score, i in scored[:top_k]:
        if score_threshold is not None and score < score_threshold:
            break
        image_id = candidates.image_ids[i]
        file_id, page_number = candidates.pages[image_id]
        results.append({"file_id": file_id, "image_id": image_id, "page_number": page_number, "score": score})
    return results


def _cache_key(*, embedder: str, kbs: list, query: str, top_k: int, score_threshold: float | None) -> str:
    payload = json.dumps({
        "embedder": embedder, "top_k": top_k, "threshold": score_threshold, "query": query,
        "kbs": sorted([kb["knowledge_base_id"], int(kb["version"] or 0)] for kb in kbs),
    }, sort_keys=True)
    return "search:" + hashlib.sha256(payload.encode()).hexdigest()


def search(
    *, user: User, knowledge_base_ids: list[str], query: str, top_k: int = 5, score_threshold: float | None = None,
    skip_missing: bool = False,
) -> list[dict]:
    """Best pages across the user's KBs: [{knowledge_base_id, file_id, image_id, page_number, score}], best first.

    An id that is not one of the user's live KBs is a 404, or with `skip_missing` left out of the search."""
    with SEARCH_LATENCY.time():
        return _search(user=user, knowledge_base_ids=knowledge_base_ids, query=query, top_k=top_k,
                       score_threshold=score_threshold, skip_missing=skip_missing)


def _search(
    *, user: User, knowledge_base_ids: list[str], query: str, top_k: int, score_threshold: float | None,
    skip_missing: bool,
) -> list[dict]:
    kbs = knowledge_bases_for_search(user=user, knowledge_base_ids=knowledge_base_ids, skip_missing=skip_missing)
    if not kbs:
        return []
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
    names = {kb["knowledge_base_id"]: collection_name(knowledge_base_id=kb["knowledge_base_id"]) for kb in kbs}
    generations = generations_get(list(names.values()))
    results: list[dict] = []
    for kb in kbs:
        name = names[kb["knowledge_base_id"]]
        if query_vectors.shape[0] == 0 or not client.has_collection(collection_name=name):
            continue
        collection_check(name=name, embedder=embedder.name, dim=embedder.dim, client=client)
        hits = search_collection(
            client=client, name=name, query_vectors=query_vectors, top_k=top_k, score_threshold=score_threshold,
            generation=generations[name], cache=page_cache(),
        )
        results.extend({"knowledge_base_id": kb["knowledge_base_id"], **hit} for hit in hits)
    results.sort(key=lambda r: -r["score"])
    results = results[:top_k]
    try:
        cache.set(key, json.dumps(results), ex=CACHE_TTL_S)
    except Exception:  # noqa: BLE001
        logger.warning("search cache unavailable", exc_info=True)
    return results
