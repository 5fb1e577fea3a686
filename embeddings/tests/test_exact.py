"""The dense side's fast path: small KBs at rest scored exactly over all their rows in process (embeddings.exact)."""

import uuid

import numpy as np
import pytest

from embeddings.collections import dense_collection_name
from embeddings.embedders import get_embedder
from embeddings.exact import matrix_cache
from embeddings.retrieval import dense_search
from embeddings.services import file_index_delete, page_scope, vectors_replace_file
from embeddings.tests.conftest import unit_rows


@pytest.fixture
def dim():
    return get_embedder().dim


def _kb(rng, dim, *, files=2, pages=4):
    """A KB of random pages (3 to 9 rows each): {image_id: (file_id, page_number, rows)}."""
    kb = f"kb-{uuid.uuid4().hex}"
    stored = {}
    for f in range(files):
        file_id = f"f-{uuid.uuid4().hex[:8]}"
        batch = [(f"img-{uuid.uuid4().hex[:10]}", p + 1, unit_rows(rng, 3 + (p * 2 + f) % 7, dim))
                 for p in range(pages)]
        vectors_replace_file(knowledge_base_id=kb, username="u", file_id=file_id, pages=batch)
        stored.update({image_id: (file_id, n, rows) for image_id, n, rows in batch})
    return kb, stored


def _brute_force(stored: dict, query: np.ndarray) -> list[tuple[str, float]]:
    scores = {i: float((rows @ query.T).max(axis=0).sum()) for i, (_, _, rows) in stored.items()}
    return sorted(scores.items(), key=lambda item: -item[1])


def _cached_keys(kb: str, dim: int) -> list:
    scope = page_scope(collection=dense_collection_name(embedder=get_embedder().name, dim=dim), knowledge_base_id=kb)
    return [key for key in list(matrix_cache()._items) if key[0] == scope]


def test_a_small_kb_at_rest_is_scored_exactly_over_every_row(rng, dim, index_stack):
    kb, stored = _kb(rng, dim)
    query = unit_rows(rng, 6, dim)
    hits = dense_search(embedder=get_embedder().name, dim=dim, knowledge_base_ids=[kb], query_vectors=query,
                        top_k=5)
    expected = _brute_force(stored, query)[:5]
    assert [h["image_id"] for h in hits] == [i for i, _ in expected]
    assert [h["score"] for h in hits] == pytest.approx([s for _, s in expected], abs=1e-4)
    first = hits[0]
    assert (first["file_id"], first["page_number"]) == stored[first["image_id"]][:2]
    assert first["knowledge_base_id"] == kb
    assert len(_cached_keys(kb, dim)) == 1  # served from the in-process matrix


def test_a_write_is_seen_by_the_next_search(rng, dim):
    kb, stored = _kb(rng, dim)
    query = unit_rows(rng, 6, dim)
    search = dict(embedder=get_embedder().name, dim=dim, knowledge_base_ids=[kb], query_vectors=query, top_k=3)
    dense_search(**search)
    # A new file whose page holds the query's own vectors: the best page there can be.
    vectors_replace_file(knowledge_base_id=kb, username="u", file_id="f-new", pages=[("img-best", 1, query.copy())])
    hits = dense_search(**search)
    assert hits[0]["image_id"] == "img-best"
    assert hits[0]["score"] == pytest.approx(6.0, abs=1e-3)
    assert len(_cached_keys(kb, dim)) == 2  # one matrix per write generation
    file_index_delete(knowledge_base_id=kb, file_id="f-new")
    assert "img-best" not in {h["image_id"] for h in dense_search(**search)}


def test_big_kbs_and_fresh_writes_take_the_ann_path_and_merge_on_one_scale(rng, dim, settings):
    small, small_pages = _kb(rng, dim, files=1)
    big, big_pages = _kb(rng, dim, files=1)
    query = unit_rows(rng, 6, dim)
    # The big KB holds a page made of the query's vectors: the ANN path must find it, ranked above every page
    # of the small KB by the same exact MaxSim scale.
    vectors_replace_file(knowledge_base_id=big, username="u", file_id="f-best", pages=[("img-best", 1, query.copy())])
    big_pages["img-best"] = ("f-best", 1, query)
    settings.SEARCH_EXACT_MAX_MB = 27 * dim * 4 / 1024 / 1024  # the small KB's 24 rows fit, the big one's 30 do not
    hits = dense_search(embedder=get_embedder().name, dim=dim, knowledge_base_ids=[small, big], query_vectors=query,
                        top_k=4)
    expected = _brute_force(small_pages | big_pages, query)[:4]
    assert [h["image_id"] for h in hits] == [i for i, _ in expected]
    assert [h["score"] for h in hits] == pytest.approx([s for _, s in expected], abs=1e-3)
    assert matrix_cache().get(_cached_keys(big, dim)[0]).vectors is None  # remembered as too big

    fresh, _ = _kb(rng, dim, files=1)
    dense_search(embedder=get_embedder().name, dim=dim, knowledge_base_ids=[fresh], query_vectors=query, top_k=3,
                 consistency="Strong")
    assert _cached_keys(fresh, dim) == []  # just written: no matrix that could miss a row a moment old
