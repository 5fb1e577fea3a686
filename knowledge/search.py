"""Search over the caller's knowledge bases: hybrid page retrieval, then what a client needs to show a hit.

Every hit (search, chat citations, workflows, the open interfaces) carries the fields DECISIONS.md defines:
`knowledge_base_id`, `file_id`, `filename`, `page_number`, `score`, `snippet`, `image_url`, `thumbnail_url`
(plus `image_id`, `dense_score`, `lexical_score`).
"""

import functools
import hashlib
import json
import logging
import re
from datetime import UTC, datetime

from django.conf import settings

from accounts.models import User
from embeddings.embedders import embedder_spec
from embeddings.hybrid import MODES, pages_search
from embeddings.lexical import query_terms
from embeddings.query import query_vectors_embed
from embeddings.services import embedder_check, embedder_tag
from knowledge.search_filters import SearchFilters, search_filter_file_ids
from knowledge.selectors import knowledge_bases_for_search, page_image_url, pages_get
from layra.errors import ValidationError
from layra.metrics import SEARCH_LATENCY
from layra.redis import redis_client

logger = logging.getLogger(__name__)

CACHE_TTL_S = 600


def _cache_key(*, embedder: str, kbs: list, query: str, top_k: int, score_threshold: float | None, mode: str,
               file_ids: list[str] | None = None) -> str:
    payload = json.dumps({
        "embedder": embedder, "top_k": top_k, "threshold": score_threshold, "query": query, "mode": mode,
        "files": file_ids,
        "kbs": sorted([kb["knowledge_base_id"], int(kb["version"] or 0)] for kb in kbs),
    }, sort_keys=True)
    return "search:" + hashlib.sha256(payload.encode()).hexdigest()


@functools.lru_cache(maxsize=256)
def _terms_pattern(query: str) -> re.Pattern | None:
    """One pass over a page finds every query term (longest first, so a term's longer neighbour wins)."""
    terms = sorted({t for t in query_terms(query) if len(t) > 1}, key=len, reverse=True)
    if not terms:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(t) for t in terms) + ")", re.IGNORECASE)


def snippet_of(text: str, query: str, *, width: int | None = None) -> str:
    """A short window of the page's text around its densest run of query terms ("" for a page without text)."""
    width = width or settings.SEARCH_SNIPPET_CHARS
    text = " ".join((text or "").split())
    if not text:
        return ""
    pattern = _terms_pattern(query)
    positions = [m.start() for m in pattern.finditer(text)] if pattern else []
    if not positions:
        return text[:width] + ("…" if len(text) > width else "")
    positions.sort()
    # The window start that covers the most term occurrences (two pointers over sorted positions).
    best_start, best_count, j = positions[0], 0, 0
    for i, start in enumerate(positions):
        while positions[j] < start - width // 2:
            j += 1
        if i - j + 1 > best_count:
            best_count, best_start = i - j + 1, positions[j]
    begin = max(0, min(best_start - width // 4, len(text) - width))
    while begin > 0 and not text[begin - 1].isspace():  # start on a word
        begin -= 1
    clip = text[begin:begin + width]
    return ("…" if begin > 0 else "") + clip + ("…" if begin + width < len(text) else "")


def _recently_written(kbs: list[dict]) -> bool:
    """A KB changed within SEARCH_STRONG_AFTER_WRITE_S: read what was just written (Milvus' bounded staleness
    could still miss it); afterwards searches do not wait for the server's time tick."""
    now = datetime.now(UTC)
    for kb in kbs:
        try:
            changed = datetime.fromisoformat(kb["last_modify_at"])
        except (KeyError, TypeError, ValueError):
            return True
        if changed.tzinfo is None:
            changed = changed.replace(tzinfo=UTC)
        if (now - changed).total_seconds() < settings.SEARCH_STRONG_AFTER_WRITE_S:
            return True
    return False


def hidden_file_ids(kbs: list[dict]) -> list[str]:
    """Files of these KBs whose pages the indexes still hold but a search must skip: files in the trash and new
    versions still being ingested (knowledge.hidden; read with the KB's version, which the cache key holds)."""
    return sorted({file_id for kb in kbs for file_id in kb.get("hidden_file_ids") or []})


def _hits_enrich(*, user: User, hits: list[dict], query: str) -> list[dict]:
    # The index searches left out the files hidden when the KBs were read; a file moved since (a version swap) is
    # still this answer's, or the answer would lose the pages of both versions for an instant.
    found = pages_get(user=user, image_ids=[h["image_id"] for h in hits], in_trash_too=True)
    results = []
    for hit in hits:
        if hit["image_id"] not in found:
            continue  # deleted between the index read and now
        file, page = found[hit["image_id"]]
        results.append({
            **hit,
            "filename": file.filename,
            "snippet": snippet_of(page.text or "", query),
            "image_url": page_image_url(user=user, file_id=hit["file_id"], page_number=hit["page_number"]),
            "thumbnail_url": page_image_url(user=user, file_id=hit["file_id"], page_number=hit["page_number"],
                                            size="thumb"),
        })
    return results


def search(*, user: User, knowledge_base_ids: list[str], query: str, top_k: int = 5,
           score_threshold: float | None = None, skip_missing: bool = False, mode: str = "hybrid",
           filters: SearchFilters | None = None) -> list[dict]:
    """Best pages of the user's KBs for a query, best first. `score` is the fused score in (0, 1].

    An id that is not one of the user's live KBs is a 404, or with `skip_missing` left out of the search.
    `filters` (file ids, filename, upload dates) become a file id filter inside both searches."""
    if mode not in MODES:
        raise ValidationError(f"Unknown search mode {mode!r}.", details={"modes": list(MODES)})
    with SEARCH_LATENCY.time():
        return _search(user=user, knowledge_base_ids=knowledge_base_ids, query=query, top_k=top_k,
                       score_threshold=score_threshold, skip_missing=skip_missing, mode=mode,
                       filters=filters or SearchFilters())


def _search(*, user: User, knowledge_base_ids: list[str], query: str, top_k: int, score_threshold: float | None,
            skip_missing: bool, mode: str, filters: SearchFilters) -> list[dict]:
    kbs = knowledge_bases_for_search(user=user, knowledge_base_ids=knowledge_base_ids, skip_missing=skip_missing)
    embedder = embedder_spec()  # name and dim only: a GPU model is never loaded to search
    for kb in kbs:
        embedder_check(knowledge_base_id=kb["knowledge_base_id"], recorded=kb.get("embedder"),
                       embedder=embedder.name, dim=embedder.dim)
    kbs = [kb for kb in kbs if kb.get("embedder")]  # no file indexed yet: nothing to search
    if not kbs or not query.strip():
        return []
    file_ids = search_filter_file_ids(user=user, knowledge_base_ids=[kb["knowledge_base_id"] for kb in kbs],
                                      filters=filters)
    if file_ids == []:
        return []  # the filters leave no file
    key = _cache_key(embedder=embedder_tag(embedder=embedder.name, dim=embedder.dim), kbs=kbs, query=query,
                     top_k=top_k, score_threshold=score_threshold, mode=mode, file_ids=file_ids)
    cache = redis_client("cache")
    try:
        cached = cache.get(key)
    except Exception:  # noqa: BLE001 - a cache outage must not stop search
        logger.warning("search cache unavailable", exc_info=True)
        cached = None
    if cached is not None:
        hits = json.loads(cached)
    else:
        query_vectors = query_vectors_embed(text=query) if mode != "lexical" else None
        hits = pages_search(knowledge_base_ids=[kb["knowledge_base_id"] for kb in kbs], query=query,
                            query_vectors=query_vectors, embedder=embedder.name, dim=embedder.dim, top_k=top_k,
                            mode=mode, score_threshold=score_threshold, strong=_recently_written(kbs),
                            file_ids=file_ids, exclude_file_ids=hidden_file_ids(kbs))
        try:
            cache.set(key, json.dumps(hits), ex=CACHE_TTL_S)
        except Exception:  # noqa: BLE001
            logger.warning("search cache unavailable", exc_info=True)
    # URLs are signed per user and expire: built for each answer, never cached.
    return _hits_enrich(user=user, hits=hits, query=query)
