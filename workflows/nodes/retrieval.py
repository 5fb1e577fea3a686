"""retrieval: searches the user's knowledge bases for `query`; stores the hits with their page text.

Optional data `file_ids`, `filename`, `uploaded_after`, `uploaded_before` narrow the search to some files, as
they do for `POST search/` and chat turns (knowledge.search_filters)."""

from knowledge.search import search
from knowledge.search_filters import FIELDS, SearchFilters, search_filters_parse
from knowledge.selectors import pages_get
from layra.errors import DomainError, ValidationError

from .base import NodeError, NodeType, check_id_list, check_template, fail


def pages_retrieve(*, user, knowledge_base_ids: list[str], query: str, top_k: int,
                   filters: SearchFilters | None = None) -> list[dict]:
    """The top hits of a search, each with its page's text layer (shared with the LLM node)."""
    try:
        hits = search(user=user, knowledge_base_ids=knowledge_base_ids, query=query, top_k=top_k, filters=filters)
    except DomainError as exc:
        raise NodeError(f"Retrieval failed: {exc.message}") from None
    found = pages_get(user=user, image_ids=[hit["image_id"] for hit in hits])
    return [{**hit, "text": (found[hit["image_id"]][1].text or "") if hit["image_id"] in found else ""}
            for hit in hits]


def node_filters(node_id: str, data: dict) -> SearchFilters:
    """The node's search filters (ValidationError naming the node when one is malformed)."""
    try:
        return search_filters_parse({k: data[k] for k in FIELDS if k in data})
    except ValidationError as exc:
        fail(node_id, f"invalid search filters: {exc.details}")


class RetrievalNode(NodeType):
    name = "retrieval"

    def validate(self, node_id, data):
        check_template(node_id, data, "query")
        check_id_list(node_id, data, "knowledge_base_ids",
                      "a retrieval node needs 'knowledge_base_ids' (a non-empty list).", required=True)
        top_k = data.get("top_k", 5)
        if not isinstance(top_k, int) or not 1 <= top_k <= 50:
            fail(node_id, "'top_k' must be an integer between 1 and 50.")
        node_filters(node_id, data)

    def execute(self, ctx, node, data):
        query = ctx.render(data.get("query", ""))
        ctx.store(node, pages_retrieve(user=ctx.user, knowledge_base_ids=data["knowledge_base_ids"], query=query,
                                       top_k=data.get("top_k", 5), filters=node_filters(node["id"], data)))
        return ctx.successors(node["id"])
