"""A stateless answer for the open interfaces (the OpenAI-compatible endpoint, MCP's `ask`): the chat answer path
(chat.prompt's retrieval and page prompt, chat.answer's model events) without a conversation. The client sends
the whole history; nothing is stored but the audit record."""

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from django.conf import settings

from accounts.models import User
from accounts.services import audit_log_record
from chat.answer import model_events
from chat.llm import ResolvedModel
from chat.prompt import pages_retrieve, question_content
from chat.selectors import model_resolve, model_resolve_named
from chat.services import model_url_allowed
from knowledge.selectors import knowledge_bases_for_search
from layra.errors import ModelProviderError, ValidationError
from layra.ids import new_id

ROLES = ("system", "developer", "user", "assistant")
# Rough prompt-token estimate when the provider reports none: ~4 characters a token, a flat cost per image.
CHARS_PER_TOKEN = 4
TOKENS_PER_IMAGE = 765


@dataclass
class Completion:
    completion_id: str
    created: int
    model: ResolvedModel
    citations: list[dict]
    events: Iterator[tuple[str, dict]]  # ("keepalive"|"token"|"done"|"error", data); closing it cancels

    def close(self) -> None:
        self.events.close()


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(part.get("text", "") for part in content or [] if part.get("type") == "text")


def prompt_tokens_estimate(messages: list[dict]) -> int:
    chars, images = 0, 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
            continue
        for part in content or []:
            if part.get("type") == "text":
                chars += len(part.get("text", ""))
            else:
                images += 1
    return chars // CHARS_PER_TOKEN + images * TOKENS_PER_IMAGE


def _model_messages(*, model: ResolvedModel, messages: list[dict], pages: list[dict]) -> tuple[list[dict], str]:
    """The request to the model: the client's messages, the config's system prompt unless the client sent one,
    and the last user message with the retrieved pages before its question."""
    if not messages or messages[-1].get("role") != "user":
        raise ValidationError("The last message must be the user's question.", code="invalid_messages",
                              details={"messages": ["The last message must have role 'user'."]})
    question = _text_of(messages[-1].get("content")).strip()
    if not question:
        raise ValidationError("The question is empty.", code="invalid_messages",
                              details={"messages": ["The last user message has no text."]})
    if len(question) > settings.CHAT_MAX_QUESTION_LENGTH:
        raise ValidationError(f"The question is longer than {settings.CHAT_MAX_QUESTION_LENGTH} characters.")
    out = [{"role": m["role"], "content": m.get("content") or ""} for m in messages[:-1]]
    if not any(m["role"] in ("system", "developer") for m in out):
        system = model.system_prompt or settings.CHAT_DEFAULT_SYSTEM_PROMPT
        if system:
            out.insert(0, {"role": "system", "content": system})
    last = messages[-1].get("content")
    content = question_content(question=question, pages=pages) if pages else last
    if pages and isinstance(last, list):  # the client's own images stay with the question
        content = [*content, *(part for part in last if part.get("type") != "text")]
    out.append({"role": "user", "content": content})
    return out, question


def completion_start(*, user: User, messages: list[dict], model: str | None = None,
                     knowledge_base_ids: list[str] | None = None, stream: bool = True, source: str = "openai",
                     temperature: float | None = None, top_p: float | None = None,
                     max_tokens: int | None = None) -> Completion:
    """Resolve the model (a config id, a unique model_name, or None: the selected one), retrieve pages from
    `knowledge_base_ids` (None: the model config's KBs; [] none; an id not the user's is a 404) for the last
    user message, and start the answer; it streams when `events` is iterated."""
    resolved = model_resolve_named(user=user, model=model) if model else model_resolve(user=user)
    overrides = {k: v for k, v in {"temperature": temperature, "top_P": top_p, "max_length": max_tokens}.items()
                 if v is not None}
    resolved = replace(resolved, **overrides)
    model_url_allowed(url=resolved.model_url, resolve_host=False)
    if knowledge_base_ids is None:
        knowledge_base_ids = resolved.extra.get("base_used", [])
    else:
        knowledge_bases_for_search(user=user, knowledge_base_ids=knowledge_base_ids)  # 404 unless all the user's
    _check, question = _model_messages(model=resolved, messages=messages, pages=[])
    pages = pages_retrieve(user=user, model=resolved, knowledge_base_ids=knowledge_base_ids, question=question)
    citations = [{k: v for k, v in page.items() if not k.startswith("_")} for page in pages]
    model_messages, _question = _model_messages(model=resolved, messages=messages, pages=pages)
    audit_log_record(user=user, action="chat.completion", resource_type="model",
                     resource_id=resolved.extra.get("model_id") or "",
                     details={"source": source, "pages": len(citations), "stream": stream})
    events = _events(model=resolved, messages=model_messages, stream=stream, source=source)
    return Completion(completion_id=f"chatcmpl-{new_id()}", created=int(time.time()), model=resolved,
                      citations=citations, events=events)


def _events(*, model: ResolvedModel, messages: list[dict], stream: bool, source: str):
    """model_events, with the prompt tokens estimated when the provider reports none (usage_estimated)."""
    events = model_events(model=model, messages=messages, stream=stream, source_label=source)
    try:
        for name, data in events:
            if name == "done" and not data["usage"]["prompt_tokens"]:
                usage = dict(data["usage"])
                usage["prompt_tokens"] = prompt_tokens_estimate(messages)
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                data = {"usage": usage, "usage_estimated": True}
            yield name, data
    finally:
        events.close()


def completion_collect(*, completion: Completion) -> dict:
    """Run a completion to its end: {answer, citations, usage, usage_estimated}; a provider failure raises
    ModelProviderError."""
    parts: list[str] = []
    result = {}
    try:
        for name, data in completion.events:
            if name == "token":
                parts.append(data["text"])
            elif name == "done":
                result = data
            elif name == "error":
                raise ModelProviderError(data["message"], code=data.get("code") or "model_error")
    finally:
        completion.close()
    return {"answer": "".join(parts), "citations": completion.citations, "usage": result.get("usage", {}),
            "usage_estimated": result.get("usage_estimated", False)}
