"""A chat turn takes the search filters: its citations come from the filtered files only."""

import pytest

from chat.tests.helpers import ask_json, make_conversation, make_model
from tests.search_filter_helpers import QUERY, filter_corpus

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(user, settings):
    return filter_corpus(user, settings)


def test_chat_turn_filters_its_citations(api_client, corpus, fake_llm):
    make_model(api_client, fake_llm.url, base_used=corpus["kbs"], top_K=2)
    cid = make_conversation(api_client)
    plain = ask_json(api_client, cid, QUERY).json()
    assert {c["file_id"] for c in plain["citations"]} == {corpus["loud"]}
    filtered = ask_json(api_client, cid, QUERY, filename="report", uploaded_before="2026-01-01T00:00:00Z")
    assert filtered.status_code == 200, filtered.content
    assert {c["file_id"] for c in filtered.json()["citations"]} == {corpus["annual"]}
    assert ask_json(api_client, cid, QUERY, uploaded_after="soon").status_code == 400
