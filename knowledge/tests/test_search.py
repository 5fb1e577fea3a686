"""Hybrid search through knowledge.search on both retrieval paths (default stack and production's Milvus)."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command

from embeddings.embedders import get_embedder
from embeddings.lexical import lexical_index
from knowledge.documents import KnowledgeBase
from knowledge.search import search, snippet_of
from knowledge.services import kb_version_bump, knowledge_base_create, knowledge_base_delete
from layra.errors import NotFound, ValidationError
from tests.knowledge_helpers import index_pages

TEXTS = [
    "The invoice total is 4,200 euros, due in thirty days.",
    "Photosynthesis converts light into chemical energy in plants.",
    "The football match ended two to one after extra time.",
    "Quarterly revenue grew by twelve percent compared to last year.",
    "Mitochondria are the powerhouse of the cell.",
    "The train to Berlin leaves at seven in the morning.",
]


def _kb(user, name="kb"):
    return knowledge_base_create(user=user, name=name)


def _brute_force(query, texts_by_image, top_k):
    embedder = get_embedder()
    (q,) = embedder.embed_queries([query])
    vectors = embedder.embed_images([None] * len(texts_by_image), texts=list(texts_by_image.values()))
    scores = {image_id: float((v @ q.T).max(axis=0).sum()) for image_id, v in zip(texts_by_image, vectors,
                                                                                     strict=True)}
    return sorted(scores.items(), key=lambda kv: -kv[1])[:top_k]


@pytest.mark.parametrize("query", ["how much did revenue grow", "cell biology energy"])
def test_dense_side_matches_brute_force_maxsim_across_kbs(user, index_stack, query):
    kb1, kb2 = _kb(user), _kb(user)
    f1 = index_pages(user=user, knowledge_base_id=kb1.knowledge_base_id, texts=TEXTS[:3])
    f2 = index_pages(user=user, knowledge_base_id=kb2.knowledge_base_id, texts=TEXTS[3:])
    by_image = {f"{f1}-p{i + 1}": t for i, t in enumerate(TEXTS[:3])} | {
        f"{f2}-p{i + 1}": t for i, t in enumerate(TEXTS[3:])}
    results = search(user=user, knowledge_base_ids=[kb1.knowledge_base_id, kb2.knowledge_base_id], query=query,
                     top_k=4, mode="dense")
    expected = _brute_force(query, by_image, 4)
    assert [r["image_id"] for r in results] == [image_id for image_id, _ in expected]
    for r, (_, score) in zip(results, expected, strict=True):
        assert r["score"] == pytest.approx(score, abs=2e-2)  # page vectors are re-ranked in fp16


def test_fusion_finds_pages_each_side_alone_would_miss(user, index_stack, settings):
    """An identifier only the lexical side matches, a scanned page (no text) only the dense side can rank, and a
    page both agree on; the hybrid list holds all three."""
    settings.SEARCH_FUSION_DEPTH = 3
    kb = _kb(user)
    texts = TEXTS + [
        "Error E4711_QX is raised when the spool directory is full.",
        "Trains, stations and timetables: how the railway in Berlin runs every morning.",
    ]
    scanned = [True] * len(TEXTS) + [True, False]
    file_id = index_pages(user=user, knowledge_base_id=kb.knowledge_base_id, texts=texts, with_text=scanned,
                          noise_pages=frozenset({7}))
    ident, scan = f"{file_id}-p7", f"{file_id}-p8"
    query = "E4711_QX spool directory train Berlin"

    lexical = search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query=query,
                     top_k=3, mode="lexical")
    assert scan not in {r["image_id"] for r in lexical}  # no text: the lexical side cannot see it
    hybrid = search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query=query,
                    top_k=5)
    by_id = {r["image_id"]: r for r in hybrid}
    assert ident in by_id and by_id[ident]["lexical_score"] is not None and by_id[ident]["dense_score"] is None
    assert scan in by_id and by_id[scan]["lexical_score"] is None and by_id[scan]["dense_score"] is not None
    assert by_id[scan]["snippet"] == ""  # a page without a text layer has no snippet
    both = f"{file_id}-p6"  # "The train to Berlin leaves ...": found by both sides
    assert by_id[both]["dense_score"] is not None and by_id[both]["lexical_score"] is not None
    dense = search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query=query, top_k=3,
                   mode="dense")
    assert ident not in {r["image_id"] for r in dense}  # its vectors match nothing: only the lexical side has it
    assert all(0 <= r["score"] <= 1 for r in hybrid)
    assert [r["score"] for r in hybrid] == sorted((r["score"] for r in hybrid), reverse=True)
    assert "E4711_QX" in by_id[ident]["snippet"]


def test_score_threshold_applies_to_the_fused_score_and_top_k(user):
    kb = _kb(user)
    index_pages(user=user, knowledge_base_id=kb.knowledge_base_id, texts=TEXTS)
    everything = search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="revenue", top_k=6)
    assert len(everything) == 6
    cut = everything[2]["score"]
    kept = search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="revenue", top_k=6, score_threshold=cut)
    assert [r["image_id"] for r in kept] == [r["image_id"] for r in everything[:3]]


def test_cache_hit_and_invalidation_by_kb_version(user):
    kb = _kb(user)
    file_id = index_pages(user=user, knowledge_base_id=kb.knowledge_base_id, texts=TEXTS)
    first = search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice total", top_k=3)
    assert first
    # Remove the index rows behind the service's back: an identical search is answered from the cache.
    from embeddings.services import file_index_delete

    file_index_delete(knowledge_base_id=kb.knowledge_base_id, file_id=file_id)
    again = search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice total", top_k=3)
    assert [r["image_id"] for r in again] == [r["image_id"] for r in first]
    kb_version_bump(knowledge_base_id=kb.knowledge_base_id)
    assert search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice total", top_k=3) == []


def test_another_users_kb_is_not_found_and_a_deleted_kb_is_gone(user, other_user):
    kb = _kb(other_user)
    index_pages(user=other_user, knowledge_base_id=kb.knowledge_base_id, texts=TEXTS[:2])
    with pytest.raises(NotFound):
        search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice")
    assert search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice", skip_missing=True) == []
    assert search(user=other_user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice")
    knowledge_base_delete(user=other_user, knowledge_base_id=kb.knowledge_base_id)
    with pytest.raises(NotFound):
        search(user=other_user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice")


def test_embedder_mismatch_is_refused_at_search(user):
    kb = _kb(user)
    kb_version_bump(knowledge_base_id=kb.knowledge_base_id, embedder="colqwen:128")
    with pytest.raises(ValidationError) as err:
        search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice")
    assert err.value.code == "embedder_mismatch"


def test_an_empty_kb_or_blank_query_finds_nothing(user):
    kb = _kb(user)
    assert search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice") == []
    index_pages(user=user, knowledge_base_id=kb.knowledge_base_id, texts=TEXTS[:1])
    assert search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="   ") == []


def test_snippet_is_the_window_with_most_query_terms():
    text = ("Intro words. " * 40) + "The BZ_CONFIG_ERROR code means the library was miscompiled. " + ("Tail. " * 40)
    snippet = snippet_of(text, "what is BZ_CONFIG_ERROR miscompiled", width=80)
    assert "BZ_CONFIG_ERROR" in snippet and len(snippet) <= 82 and snippet.startswith("…")
    assert snippet_of("", "x") == ""
    assert snippet_of("short page", "absent") == "short page"


def test_search_endpoint_gives_what_a_client_shows(api_client, anon_client, user, other_user):
    kb = _kb(user)
    file_id = index_pages(user=user, knowledge_base_id=kb.knowledge_base_id, texts=TEXTS, filename="report.pdf")
    response = api_client.post("/api/v1/search/", {"query": "revenue growth", "knowledge_base_ids": [
        kb.knowledge_base_id], "top_k": 2}, format="json")
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert len(results) == 2 and results[0]["image_id"] == f"{file_id}-p4"
    hit = results[0]
    assert {"knowledge_base_id", "file_id", "filename", "page_number", "score", "snippet", "image_url",
            "thumbnail_url", "dense_score", "lexical_score"} <= set(hit)
    assert hit["filename"] == "report.pdf" and hit["page_number"] == 4 and "revenue" in hit["snippet"].lower()

    # The signed URLs work in a plain <img>: no Authorization header, same origin, short-lived.
    full = anon_client.get(hit["image_url"])
    assert full.status_code == 200 and full["Content-Type"] == "image/jpeg"
    thumb = anon_client.get(hit["thumbnail_url"])
    assert thumb.status_code == 200 and len(thumb.content) < len(full.content)
    query = parse_qs(urlsplit(hit["image_url"]).query)
    assert int(query["uid"][0]) == user.pk and query["size"] == ["full"]
    tampered = hit["image_url"].replace("/pages/4/", "/pages/3/")
    assert anon_client.get(tampered).status_code == 404
    other_uid = hit["image_url"].replace(f"uid={user.pk}", f"uid={other_user.pk}")
    assert anon_client.get(other_uid).status_code == 404
    assert anon_client.get(hit["image_url"].split("?")[0]).status_code in (401, 403)  # unsigned needs a login

    lexical = api_client.post("/api/v1/search/", {"query": "revenue", "knowledge_base_ids": [kb.knowledge_base_id],
                                                  "mode": "lexical"}, format="json").json()["results"]
    assert [r["image_id"] for r in lexical] == [f"{file_id}-p4"]
    bad = api_client.post("/api/v1/search/", {"query": "x", "knowledge_base_ids": [kb.knowledge_base_id],
                                              "mode": "grep"}, format="json")
    assert bad.status_code == 400
    other = _kb(other_user)
    response = api_client.post("/api/v1/search/", {"query": "x", "knowledge_base_ids": [other.knowledge_base_id]},
                               format="json")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert api_client.post("/api/v1/search/", {"query": "x", "knowledge_base_ids": []},
                           format="json").status_code == 400


def test_expired_signature_is_refused(anon_client, user, settings, monkeypatch):
    import time

    kb = _kb(user)
    index_pages(user=user, knowledge_base_id=kb.knowledge_base_id, texts=TEXTS[:1])
    hit = search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="invoice")[0]
    assert anon_client.get(hit["image_url"]).status_code == 200
    later = time.time() + settings.PAGE_IMAGE_URL_TTL_S + 5
    monkeypatch.setattr(time, "time", lambda: later)
    assert anon_client.get(hit["image_url"]).status_code == 404


def test_reindex_backfills_the_lexical_side_of_older_kbs(user, index_stack):
    """A KB indexed before the lexical index existed: dense search answers; after `reindex --lexical` the
    identifier only the lexical side matches is found too."""
    kb = _kb(user)
    file_id = index_pages(user=user, knowledge_base_id=kb.knowledge_base_id,
                          texts=TEXTS + ["Set the option --zq-frob-limit to bound the frobnication."])
    lexical_index().delete_knowledge_base(knowledge_base_id=kb.knowledge_base_id)  # as built before this change
    kb_version_bump(knowledge_base_id=kb.knowledge_base_id)
    query = "zq frob limit"
    assert search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query=query, mode="lexical") == []
    assert search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query=query)  # dense still answers
    call_command("reindex", "--all", "--lexical", verbosity=0)
    found = search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query=query, mode="lexical")
    assert found[0]["image_id"] == f"{file_id}-p7"
    stored = KnowledgeBase.objects.get(knowledge_base_id=kb.knowledge_base_id)
    assert json.loads(json.dumps(stored.embedder)) == stored.embedder  # untouched by a text-only backfill
