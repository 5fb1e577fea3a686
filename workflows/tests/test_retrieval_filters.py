"""A retrieval node takes the search filters in its data (checked when the workflow is saved)."""

import pytest

from tests.search_filter_helpers import QUERY, filter_corpus
from tests.workflows_helpers import chain, node
from workflows import services as workflow_services
from workflows.tests.test_engine import run_graph

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(user, settings):
    return filter_corpus(user, settings)


def test_retrieval_node_filters_its_hits(user, corpus):
    nodes, edges = chain(node("start", "start"),
                         node("r", "retrieval", query=QUERY, knowledge_base_ids=corpus["kbs"], top_k=2,
                              file_ids=[corpus["notes"]]),
                         node("end", "end", outputs={"hits": "r"}))
    run = run_graph(user, nodes, edges)
    assert run.status == "succeeded", run.error
    hits = run.variables["r"]
    assert hits and {h["file_id"] for h in hits} == {corpus["notes"]} and "volcano" in hits[0]["text"]

    bad = node("r", "retrieval", query="q", knowledge_base_ids=corpus["kbs"], uploaded_after="not a date")
    nodes, edges = chain(node("start", "start"), bad, node("end", "end"))
    with pytest.raises(Exception, match="invalid search filters"):
        workflow_services.workflow_create(user=user, workflow_name="bad", nodes=nodes, edges=edges)
