"""llm: streams a model's answer to `prompt` (optionally grounded on knowledge bases) into node_output events."""

from django.conf import settings

from chat.llm import LLMError, stream_chat
from layra.errors import DomainError

from .base import NodeError, NodeType, check_id_list, check_template, fail
from .retrieval import pages_retrieve


class LlmNode(NodeType):
    name = "llm"

    def validate(self, node_id, data):
        check_template(node_id, data, "prompt")
        if not data.get("prompt"):
            fail(node_id, "an LLM node needs a 'prompt'.")
        if "system_prompt" in data:
            check_template(node_id, data, "system_prompt")
        check_id_list(node_id, data, "knowledge_base_ids", "'knowledge_base_ids' must be a list of ids.",
                      required=False)

    def execute(self, ctx, node, data):
        try:
            model = ctx.resolve_model(ctx.user, data.get("model_id"))
        except DomainError as exc:
            raise NodeError(f"Model: {exc.message}") from None
        prompt = ctx.render(data["prompt"])
        system = ctx.render(data.get("system_prompt", "")) or model.system_prompt
        system = self._with_context(ctx, data, prompt, system)
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        ctx.store(node, self._stream(ctx, node["id"], model, messages))
        return ctx.successors(node["id"])

    @staticmethod
    def _with_context(ctx, data, prompt: str, system: str) -> str:
        """The system prompt, followed by the pages retrieved for the prompt when the node names knowledge bases."""
        if not data.get("knowledge_base_ids"):
            return system
        pages = pages_retrieve(user=ctx.user, knowledge_base_ids=data["knowledge_base_ids"], query=prompt,
                               top_k=data.get("top_k", 5))
        context = "\n\n".join(f"[page {p['page_number']}] {p['text']}" for p in pages if p["text"])
        return (system + "\n\nContext:\n" + context).strip()

    @staticmethod
    def _stream(ctx, node_id: str, model, messages: list[dict]) -> str:
        parts: list[str] = []
        size = 0
        try:
            for event in stream_chat(model=model, messages=messages):
                if event["type"] != "token":
                    continue
                parts.append(event["text"])
                size += len(event["text"])
                if size > settings.WORKFLOW_MAX_OUTPUT_BYTES:
                    raise NodeError("LLM output exceeds the run's output limit.")
                ctx.emit("node_output", node_id=node_id, text=event["text"])
        except LLMError as exc:
            raise NodeError(exc.message) from None
        return "".join(parts)
