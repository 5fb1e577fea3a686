"""retrieval: searches the user's knowledge bases for `query`; stores the hits with their page text."""

from knowledge.search import search
from knowledge.selectors import pages_get
from layra.errors import DomainError

from .base import NodeError, NodeType, check_id_list, check_template, fail


def pages_retrieve(*, user, knowledge_base_ids: list[str], query: str, top_k: int) -> list[dict]:
    """The top hits of a search, each with its page's text layer (shared with the LLM node)."""
    try:
        hits = search(user=user, knowledge_base_ids=knowledge_base_ids, query=query, top_k=top_k)
    except DomainError as exc:
        raise NodeError(f"Retrieval failed: {exc.message}") from None
    found = pages_get(user=user, image_ids=[hit["image_id"] for hit in hits])
    return [{**hit, "text": (found[hit["image_id"]][1].text or "") if hit["image_id"] in found else ""}
            for hit in hits]


class RetrievalNode(NodeType):
    name = "retrieval"

    def validate(self, node_id, data):
        check_template(node_id, data, "query")
        check_id_list(node_id, data, "knowledge_base_ids",
                      "a retrieval node needs 'knowledge_base_ids' (a non-empty list).", required=True)
        top_k = data.get("top_k", 5)
        if not isinstance(top_k, int) or not 1 <= top_k <= 50:
            fail(node_id, "'top_k' must be an integer between 1 and 50.")

    def execute(self, ctx, node, data):
        query = ctx.render(data.get("query", ""))
        ctx.store(node, pages_retrieve(user=ctx.user, knowledge_base_ids=data["knowledge_base_ids"], query=query,
                                       top_k=data.get("top_k", 5)))
        return ctx.successors(node["id"])
