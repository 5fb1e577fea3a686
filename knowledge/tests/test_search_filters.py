"""Search filters (file ids, filename, upload dates) hold across knowledge bases on both index stacks, inside the
searches (a filtered file's page is found even when other files' pages fill every top-k); every hit carries its
file name, page, image URLs and a snippet. Chat turns and retrieval nodes: chat/ and workflows/ tests."""

import pytest

from knowledge.search import search
from knowledge.search_filters import SearchFilters
from knowledge.services import knowledge_base_create
from tests.knowledge_helpers import index_pages
from tests.search_filter_helpers import QUERY, QUIET, filter_corpus
from tests.search_filter_helpers import at as _at

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(user, settings, index_stack):
    return filter_corpus(user, settings)


def _files(hits) -> set[str]:
    return {h["file_id"] for h in hits}


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_filters_hold_inside_the_search_across_two_kbs(user, corpus, index_stack, mode):
    unfiltered = search(user=user, knowledge_base_ids=corpus["kbs"], query=QUERY, top_k=2, mode=mode)
    assert _files(unfiltered) == {corpus["loud"]}  # the loud file fills the top-k

    cases = [
        (SearchFilters(file_ids=(corpus["annual"],)), {corpus["annual"]}),
        (SearchFilters(filename="report"), {corpus["annual"], corpus["notes"]}),  # any case, both KBs
        (SearchFilters(uploaded_after=_at(2025)), {corpus["annual"], corpus["notes"]}),
        (SearchFilters(uploaded_before=_at(2025)), {corpus["loud"]}),
        (SearchFilters(filename="REPORT", uploaded_before=_at(2026)), {corpus["annual"]}),
        (SearchFilters(file_ids=(corpus["loud"],), filename="report"), set()),
    ]
    for filters, expected in cases:
        hits = search(user=user, knowledge_base_ids=corpus["kbs"], query=QUERY, top_k=2, mode=mode,
                      filters=filters)
        assert _files(hits) == expected, filters
        assert all(h["page_number"] == 1 for h in hits if h["file_id"] != corpus["loud"])


@pytest.mark.parametrize("mode", ["hybrid", "dense"])
def test_filters_hold_on_the_small_kb_exact_path(user, corpus, index_stack, settings, mode):
    """KBs at rest are scored in process over all their rows (embeddings.exact): the filter holds there too."""
    from embeddings.exact import matrix_cache

    settings.SEARCH_STRONG_AFTER_WRITE_S = 0  # at rest: no strong read, so the exact path serves these KBs
    unfiltered = search(user=user, knowledge_base_ids=corpus["kbs"], query=QUERY, top_k=2, mode=mode)
    assert _files(unfiltered) == {corpus["loud"]}
    assert len(list(matrix_cache()._items)) >= 2  # both KBs' matrices: the exact path ran
    hits = search(user=user, knowledge_base_ids=corpus["kbs"], query=QUERY, top_k=2, mode=mode,
                  filters=SearchFilters(filename="report"))
    assert _files(hits) == {corpus["annual"], corpus["notes"]}
    assert {h["page_number"] for h in hits} == {1}


def test_api_filters_enriched_hits_and_bad_input(api_client, other_client, corpus, index_stack):
    body = {"query": QUERY, "knowledge_base_ids": corpus["kbs"], "top_k": 3}
    response = api_client.post("/api/v1/search/", {**body, "filename": "annual"}, format="json")
    assert response.status_code == 200, response.content
    (hit,) = response.json()["results"]
    assert hit["file_id"] == corpus["annual"] and hit["filename"] == "Annual-REPORT.pdf"
    assert hit["page_number"] == 1 and "volcano" in hit["snippet"]
    assert hit["image_url"].startswith(f"/api/v1/files/{corpus['annual']}/pages/1/image/?size=full&")
    assert hit["thumbnail_url"].startswith(f"/api/v1/files/{corpus['annual']}/pages/1/image/?size=thumb&")
    assert api_client.get(hit["thumbnail_url"]).status_code == 200

    dated = api_client.post("/api/v1/search/", {**body, "uploaded_after": "2025-01-01T00:00:00Z",
                                                "uploaded_before": "2026-01-01T00:00:00Z"}, format="json")
    assert _files(dated.json()["results"]) == {corpus["annual"]}
    backwards = api_client.post("/api/v1/search/", {**body, "uploaded_after": "2026-01-01T00:00:00Z",
                                                    "uploaded_before": "2025-01-01T00:00:00Z"}, format="json")
    assert backwards.status_code == 400 and "uploaded_before" in backwards.json()["error"]["details"]
    assert api_client.post("/api/v1/search/", {**body, "uploaded_after": "yesterday"},
                           format="json").status_code == 400
    assert api_client.post("/api/v1/search/", {**body, "file_ids": "not-a-list"}, format="json").status_code == 400
    # Another user's file id filters to nothing (their KB ids would be a 404, as before).
    other_kb = knowledge_base_create(user=other_client.user, name="theirs")
    theirs = index_pages(user=other_client.user, knowledge_base_id=other_kb.knowledge_base_id, texts=QUIET)
    assert api_client.post("/api/v1/search/", {**body, "file_ids": [theirs]}, format="json").json()["results"] == []


def test_too_wide_a_filter_is_400(api_client, corpus, settings):
    settings.SEARCH_FILTER_MAX_FILES = 1
    response = api_client.post("/api/v1/search/", {"query": QUERY, "knowledge_base_ids": corpus["kbs"],
                                                   "filename": "report"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "filter_too_wide"
