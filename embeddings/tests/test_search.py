import json

import numpy as np
import pytest

from embeddings.embedders import get_embedder
from embeddings.retrieval import search
from embeddings.services import collection_name, vectors_replace_file
from knowledge.cache import TOMBSTONE
from knowledge.documents import KnowledgeBase
from knowledge.selectors import summary_cache_key
from knowledge.services import kb_version_bump, knowledge_base_delete
from layra.errors import NotFound
from layra.ids import new_id
from layra.milvus import milvus_client
from layra.redis import redis_client

TEXTS = [
    "The invoice total is 4,200 euros, due in thirty days.",
    "Photosynthesis converts light into chemical energy in plants.",
    "The football match ended two to one after extra time.",
    "Quarterly revenue grew by twelve percent compared to last year.",
    "Mitochondria are the powerhouse of the cell.",
    "The train to Berlin leaves at seven in the morning.",
]


def _kb(user, **kw):
    kb = KnowledgeBase(knowledge_base_id=new_id(), knowledge_base_name="kb", username=user.username, **kw)
    kb.save()
    return kb


def _index(kb, texts, file_id="file-1"):
    vectors = get_embedder().embed_images([None] * len(texts), texts=texts)
    pages = [(f"{file_id}-p{i + 1}", i + 1, v) for i, v in enumerate(vectors)]
    vectors_replace_file(knowledge_base_id=kb.knowledge_base_id, file_id=file_id, pages=pages)
    return {image_id: v for image_id, _, v in pages}


def _brute_force(query, pages, top_k):
    (q,) = get_embedder().embed_queries([query])
    scores = {image_id: float((v @ q.T).max(axis=0).sum()) for image_id, v in pages.items()}
    return sorted(scores.items(), key=lambda kv: -kv[1])[:top_k]


@pytest.mark.parametrize("query", ["how much did revenue grow", "cell biology energy", "when does the train leave"])
def test_ranking_matches_brute_force_across_kbs(user, query):
    kb1, kb2 = _kb(user), _kb(user)
    pages = _index(kb1, TEXTS[:3], "f1") | _index(kb2, TEXTS[3:], "f2")
    results = search(user=user, knowledge_base_ids=[kb1.knowledge_base_id, kb2.knowledge_base_id], query=query,
                     top_k=4)
    expected = _brute_force(query, pages, 4)
    assert [r["image_id"] for r in results] == [image_id for image_id, _ in expected]
    for r, (_, score) in zip(results, expected, strict=True):
        assert r["score"] == pytest.approx(score, abs=2e-2)  # page vectors are re-ranked in fp16
    assert {r["knowledge_base_id"] for r in results} <= {kb1.knowledge_base_id, kb2.knowledge_base_id}
    top = results[0]
    assert top["file_id"] in ("f1", "f2") and top["page_number"] >= 1


def test_score_threshold_and_top_k(user):
    kb = _kb(user)
    _index(kb, TEXTS)
    everything = search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="revenue", top_k=6)
    assert len(everything) == 6
    assert [r["score"] for r in everything] == sorted((r["score"] for r in everything), reverse=True)
    cut = everything[2]["score"]
    kept = search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="revenue", top_k=6,
                  score_threshold=cut)
    assert [r["image_id"] for r in kept] == [r["image_id"] for r in everything[:3]]


def test_cache_hit_and_invalidation_by_kb_version(user):
    kb = _kb(user)
    _index(kb, TEXTS)
    first = search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice total", top_k=3)
    assert first
    # Remove the vectors behind the service's back: an identical search is answered from the cache.
    milvus_client().drop_collection(collection_name=collection_name(knowledge_base_id=kb.knowledge_base_id))
    assert search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice total", top_k=3) == first
    # A KB change bumps its version: the cached answer is no longer used.
    kb_version_bump(knowledge_base_id=kb.knowledge_base_id)
    assert search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice total", top_k=3) == []


def test_another_users_kb_is_not_found(user, other_user):
    kb = _kb(other_user)
    _index(kb, TEXTS[:2])
    with pytest.raises(NotFound):
        search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice")


def test_search_reads_kbs_from_their_cached_summary_with_ownership_checked_and_a_delete_drops_it(user, other_user):
    kb = _kb(user)
    _index(kb, TEXTS[:2])
    assert search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice", top_k=1)
    cached = json.loads(redis_client("cache").get(summary_cache_key(kb.knowledge_base_id)))
    assert cached["username"] == user.username and cached["version"] == kb.version
    with pytest.raises(NotFound):  # read from the cache, still not another user's
        search(user=other_user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice")
    assert search(user=other_user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice",
                  skip_missing=True) == []
    knowledge_base_delete(user=user, knowledge_base_id=kb.knowledge_base_id)
    assert redis_client("cache").get(summary_cache_key(kb.knowledge_base_id)) == TOMBSTONE
    with pytest.raises(NotFound):
        search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice")


def test_embedder_mismatch_is_refused_at_search(user):
    from embeddings.services import collection_ensure
    from layra.errors import ValidationError

    kb = _kb(user)
    collection_ensure(knowledge_base_id=kb.knowledge_base_id, embedder="colqwen", dim=128)
    with pytest.raises(ValidationError):
        search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice")


def test_search_endpoint(api_client, user, other_user):
    kb = _kb(user)
    _index(kb, TEXTS)
    response = api_client.post("/api/v1/search/", {"query": "revenue growth", "knowledge_base_ids": [
        kb.knowledge_base_id], "top_k": 2}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body) == 2 and body[0]["image_id"] == "file-1-p4"
    assert set(body[0]) == {"knowledge_base_id", "file_id", "image_id", "page_number", "score"}

    other = _kb(other_user)
    response = api_client.post("/api/v1/search/", {"query": "x", "knowledge_base_ids": [other.knowledge_base_id]},
                               format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"

    response = api_client.post("/api/v1/search/", {"query": "x", "knowledge_base_ids": []}, format="json")
    assert response.status_code == 400


def test_search_endpoint_requires_auth(anon_client):
    assert anon_client.post("/api/v1/search/", {}, format="json").status_code in (401, 403)


def test_page_vectors_come_from_the_redis_tier(user):
    from embeddings.page_cache import binary_redis, page_key

    kb = _kb(user)
    pages = _index(kb, TEXTS[:2])
    name = collection_name(knowledge_base_id=kb.knowledge_base_id)
    raw = binary_redis().get(page_key(name, "file-1", "file-1-p1"))
    stored = np.frombuffer(raw, dtype=np.float16).reshape(-1, get_embedder().dim)
    np.testing.assert_allclose(stored, pages["file-1-p1"], atol=1e-3)
