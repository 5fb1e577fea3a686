"""Writes for model configs and conversations, and the retrieval-augmented answer."""

import base64
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator

from accounts.models import User
from accounts.services import audit_log_record
from chat import crypto
from chat.documents import Conversation, ModelConfig, ModelEntry, Turn, utcnow
from chat.llm import REFUSED, LLMError, ResolvedModel, complete_chat, model_url_check, stream_chat
from chat.selectors import (
    LATEST_TURN,
    conversation_get,
    conversation_turn_context,
    model_config_cache_key,
    model_resolve,
)
from knowledge import selectors as knowledge_selectors
from knowledge import services as knowledge_services
from knowledge.search import search as knowledge_search
from layra import cache, netguard
from layra.errors import DomainError, NotFound, ValidationError
from layra.ids import new_id
from layra.metrics import LLM_ERRORS, LLM_LATENCY

logger = logging.getLogger(__name__)

_MODEL_FIELDS = ("model_name", "model_url", "base_used", "system_prompt", "temperature", "max_length", "top_P",
                 "top_K", "score_threshold")
_url_validator = URLValidator(schemes=["http", "https"])


def model_config_invalidate(*, username: str) -> None:
    """Drop the cached config after a write: a tombstone, so a read that raced with the write cannot put the old
    config back (layra.cache)."""
    cache.drop(model_config_cache_key(username))


def _model_configs(*, user: User):
    """The user's config document as a queryset for atomic updates (created empty on first use)."""
    configs = ModelConfig.objects(username=user.username)
    configs.update_one(upsert=True, set_on_insert__models=[], set__last_modify_at=utcnow())
    return configs


def _model_entry(*, user: User, model_id: str) -> ModelEntry:
    config = ModelConfig.objects(username=user.username, models__model_id=model_id).first()
    if config is None:
        raise NotFound("Model not found.")
    return next(m for m in config.models if m.model_id == model_id)


def _clean_model_fields(*, user: User, fields: dict) -> dict:
    cleaned = {k: v for k, v in fields.items() if k in _MODEL_FIELDS}
    if "model_name" in cleaned:
        cleaned["model_name"] = (cleaned["model_name"] or "").strip()
        if not cleaned["model_name"]:
            raise ValidationError("model_name is empty.", details={"model_name": ["This field may not be blank."]})
    if "model_url" in cleaned:
        url = (cleaned["model_url"] or "").strip().rstrip("/")
        try:
            _url_validator(url)
        except DjangoValidationError:
            raise ValidationError(
                "model_url must be the http(s) base URL of an OpenAI-compatible API, e.g. https://api.openai.com/v1.",
                details={"model_url": ["Enter a valid http(s) URL."]},
            ) from None
        _model_url_allowed(url=url)
        cleaned["model_url"] = url
    if "base_used" in cleaned:
        ids = list(dict.fromkeys(cleaned["base_used"] or []))
        if ids:
            # another user's KB is a 404
            knowledge_selectors.knowledge_bases_for_search(user=user, knowledge_base_ids=ids)
        cleaned["base_used"] = ids
    if "system_prompt" in cleaned:
        cleaned["system_prompt"] = cleaned["system_prompt"] or ""
    if "top_K" in cleaned and cleaned["top_K"] is None:
        cleaned["top_K"] = 3
    return cleaned


def _model_url_allowed(*, url: str, resolve_host: bool = True) -> None:
    """Refuse a model URL the outbound guard would refuse (loopback, private, metadata, ...), as a 400."""
    try:
        model_url_check(url=url, resolve_host=resolve_host)
    except netguard.Refused as exc:
        raise ValidationError(exc.message, code=REFUSED, details={"model_url": [exc.message]}) from None


def _set_api_key(entry: ModelEntry, api_key: str) -> None:
    entry.api_key = crypto.encrypt(api_key)
    entry.api_key_hint = crypto.mask(api_key)


def model_create(*, user: User, model_name: str, model_url: str, api_key: str = "", select: bool = False,
                 **fields) -> ModelEntry:
    """Add a model to the user's config; the first model (or select=True) becomes the selected one."""
    cleaned = _clean_model_fields(user=user, fields={**fields, "model_name": model_name, "model_url": model_url})
    entry = ModelEntry(model_id=new_id(), **cleaned)
    _set_api_key(entry, api_key or "")
    configs = _model_configs(user=user)
    configs.update_one(push__models=entry)
    if select:
        configs.update_one(set__selected_model=entry.model_id)
    else:  # the first model becomes the selected one
        ModelConfig.objects(username=user.username, selected_model=None).update_one(
            set__selected_model=entry.model_id)
    model_config_invalidate(username=user.username)
    audit_log_record(user=user, action="model.create", resource_type="model", resource_id=entry.model_id,
                     details={"model_name": entry.model_name})
    return entry


def model_update(*, user: User, model_id: str, api_key: str | None = None, **fields) -> ModelEntry:
    """Change the given fields; api_key None keeps the stored key, "" removes it."""
    _model_entry(user=user, model_id=model_id)
    cleaned = _clean_model_fields(user=user, fields=fields)
    changes = {f"set__models__S__{name}": value for name, value in cleaned.items()}
    if api_key is not None:
        changes["set__models__S__api_key"] = crypto.encrypt(api_key)
        changes["set__models__S__api_key_hint"] = crypto.mask(api_key)
    changes["set__models__S__last_modify_at"] = utcnow()
    ModelConfig.objects(username=user.username, models__model_id=model_id).update_one(
        set__last_modify_at=utcnow(), **changes)
    model_config_invalidate(username=user.username)
    audit_log_record(user=user, action="model.update", resource_type="model", resource_id=model_id,
                     details={"fields": sorted([*fields, *(["api_key"] if api_key is not None else [])])})
    return _model_entry(user=user, model_id=model_id)


def model_delete(*, user: User, model_id: str) -> None:
    _model_entry(user=user, model_id=model_id)
    ModelConfig.objects(username=user.username).update_one(pull__models__model_id=model_id,
                                                           set__last_modify_at=utcnow())
    ModelConfig.objects(username=user.username, selected_model=model_id).update_one(set__selected_model=None)
    model_config_invalidate(username=user.username)
    audit_log_record(user=user, action="model.delete", resource_type="model", resource_id=model_id)


def model_select(*, user: User, model_id: str) -> ModelEntry:
    if not ModelConfig.objects(username=user.username, models__model_id=model_id).update_one(
            set__selected_model=model_id, set__last_modify_at=utcnow()):
        raise NotFound("Model not found.")
    model_config_invalidate(username=user.username)
    return _model_entry(user=user, model_id=model_id)


def model_test(*, user: User, model_id: str, timeout: float = 15) -> dict:
    """Send a one-line prompt to the model: {"ok", "latency_ms", "reply" | "error"} (never raises LLMError)."""
    model = model_resolve(user=user, model_id=model_id)
    _model_url_allowed(url=model.model_url)  # a config saved before the guard, or an allowlist since shortened
    probe = ResolvedModel(model_name=model.model_name, model_url=model.model_url, api_key=model.api_key,
                          max_length=16)
    started = time.monotonic()
    try:
        reply, _ = complete_chat(model=probe, messages=[{"role": "user", "content": "Reply with: ok"}],
                                 timeout=timeout)
    except LLMError as exc:
        if exc.code == REFUSED:  # the name resolved to a refused address when connecting (DNS changed)
            raise ValidationError(exc.message, code=REFUSED) from None
        return {"ok": False, "latency_ms": round((time.monotonic() - started) * 1000, 1), "error": exc.message}
    return {"ok": True, "latency_ms": round((time.monotonic() - started) * 1000, 1), "reply": reply[:200]}


# --- conversations ---------------------------------------------------------------------------------------


def conversation_create(*, user: User, conversation_name: str = "") -> Conversation:
    name = (conversation_name or "").strip()[:200] or "New conversation"
    conversation = Conversation(conversation_id=new_id(), conversation_name=name, username=user.username, turns=[])
    conversation.save()
    return conversation


def conversation_update(*, user: User, conversation_id: str, conversation_name: str | None = None,
                        is_read: bool | None = None) -> Conversation:
    """Rename and/or mark read; renaming does not move the conversation up the list."""
    conversation = conversation_get(user=user, conversation_id=conversation_id)
    changes = {}
    if conversation_name is not None:
        name = conversation_name.strip()
        if not name:
            raise ValidationError("conversation_name is empty.",
                                  details={"conversation_name": ["This field may not be blank."]})
        changes["set__conversation_name"] = name[:200]
    if is_read is not None:
        changes["set__is_read"] = is_read
    if changes:
        Conversation.objects(conversation_id=conversation_id, username=user.username).update_one(**changes)
        conversation.reload()
    return conversation


def conversation_delete(*, user: User, conversation_id: str) -> None:
    """Delete the conversation and its temporary KB (files, pages, vectors purged by knowledge)."""
    conversation = conversation_get(user=user, conversation_id=conversation_id)
    temp_ids = {conversation.temp_db, *(t.temp_db for t in conversation.turns)} - {None, ""}
    for knowledge_base_id in temp_ids:
        try:
            knowledge_services.knowledge_base_delete(user=user, knowledge_base_id=knowledge_base_id)
        except NotFound:
            pass  # already gone
    Conversation.objects(conversation_id=conversation_id, username=user.username).delete()
    audit_log_record(user=user, action="conversation.delete", resource_type="conversation",
                     resource_id=conversation_id)


def conversation_temp_kb_ensure(*, user: User, conversation_id: str) -> str:
    """The conversation's temporary KB id, created on first use (or again if it was deleted).

    Two concurrent first uploads both create a KB; the one that claims the conversation wins and the
    other KB is deleted again.
    """
    conversation = conversation_get(user=user, conversation_id=conversation_id)
    current = conversation.temp_db
    if current and knowledge_selectors.knowledge_bases_for_search(user=user, knowledge_base_ids=[current],
                                                                    skip_missing=True):
        return current
    kb = knowledge_services.knowledge_base_create(
        user=user, name=f"Conversation files: {conversation.conversation_name}"[:200], is_temp=True,
        conversation_id=conversation_id,
    )
    claimed = Conversation.objects(conversation_id=conversation_id, username=user.username,
                                   temp_db=current).update_one(set__temp_db=kb.knowledge_base_id)
    if claimed:
        return kb.knowledge_base_id
    knowledge_services.knowledge_base_delete(user=user, knowledge_base_id=kb.knowledge_base_id)
    conversation.reload()
    return conversation.temp_db


def conversation_files_upload(*, user: User, conversation_id: str, uploaded_files: list,
                              ip: str | None = None) -> list:
    """Upload files into the conversation's temporary KB; they go through the normal ingestion pipeline."""
    knowledge_base_id = conversation_temp_kb_ensure(user=user, conversation_id=conversation_id)
    return knowledge_services.files_upload(user=user, knowledge_base_id=knowledge_base_id,
                                              uploaded_files=uploaded_files, ip=ip)


# --- answering -------------------------------------------------------------------------------------------


class ModelProviderError(DomainError):
    """The model endpoint failed (non-streaming answers); the turn is stored as failed."""

    status_code = 502
    code = "model_error"
    default_message = "The model endpoint failed."


class AnswerEvents:
    """The answer's events, already started: closing it (or dropping it) records the turn as cancelled."""

    def __init__(self, events: Iterator[tuple[str, dict]]):
        self._events = events
        self._first: tuple[str, dict] | None = next(events)  # runs up to the citations event

    def __iter__(self):
        return self

    def __next__(self) -> tuple[str, dict]:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return next(self._events)

    def close(self) -> None:
        self._events.close()


@dataclass
class Answer:
    conversation_id: str
    message_id: str
    parent_message_id: str | None
    citations: list[dict]
    events: AnswerEvents  # ("citations"|"token"|"done"|"error", data); closing it cancels


def _image_mime(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def _data_uri(data: bytes) -> str:
    return f"data:{_image_mime(data)};base64,{base64.b64encode(data).decode()}"


def _cited_page_parts(*, user: User, citations: list[dict]) -> list[dict]:
    """Content parts showing an earlier turn's cited pages again, read back from storage (deleted ones skipped)."""
    found = knowledge_selectors.pages_get(user=user, image_ids=[c.get("image_id", "") for c in citations])
    parts = []
    for citation in citations:
        if citation.get("image_id") not in found:
            continue
        _file, page = found[citation["image_id"]]
        data = knowledge_selectors.page_image_data(page)
        parts.append({"type": "text", "text": f"[{citation.get('index')}] {citation.get('filename')}, "
                                              f"page {citation.get('page_number')}"})
        parts.append({"type": "image_url", "image_url": {"url": _data_uri(data)}})
    return parts


def _retrieve(*, user: User, model: ResolvedModel, knowledge_base_ids: list[str], question: str) -> list[dict]:
    """Top pages for the question: citations with the page image (data URI) and text layer attached."""
    if not knowledge_base_ids:
        return []
    # A KB saved in the model config but deleted since is left out, not an error.
    hits = knowledge_search(user=user, knowledge_base_ids=knowledge_base_ids, query=question,
                            top_k=model.extra.get("top_K") or 3,
                            score_threshold=model.extra.get("score_threshold"), skip_missing=True)
    found = knowledge_selectors.pages_get(user=user, image_ids=[hit["image_id"] for hit in hits])
    pages = []
    for index, hit in enumerate(hits, start=1):
        if hit["image_id"] not in found:
            continue  # deleted between search and now
        file, page = found[hit["image_id"]]
        data = knowledge_selectors.page_image_data(page)
        pages.append({
            "index": index,
            "knowledge_base_id": hit["knowledge_base_id"],
            "file_id": hit["file_id"],
            "filename": file.filename,
            "image_id": hit["image_id"],
            "page_number": hit["page_number"],
            "score": round(float(hit["score"]), 4),
            "snippet": hit["snippet"],
            "image_url": hit["image_url"],
            "thumbnail_url": hit["thumbnail_url"],
            "_text": (page.text or "")[: settings.CHAT_PAGE_TEXT_CHARS],
            "_data_uri": _data_uri(data),
        })
    return pages


def _messages(*, model: ResolvedModel, history: list[Turn], question: str, pages: list[dict],
              user: User | None = None) -> list[dict]:
    """The request to the model. With `user`, the last CHAT_HISTORY_IMAGE_TURNS answered turns carry their cited
    page images again, so a follow-up question ("and the table on that page?") can be answered from them."""
    messages = []
    system = model.system_prompt or settings.CHAT_DEFAULT_SYSTEM_PROMPT
    if system:
        messages.append({"role": "system", "content": system})
    answered = [t for t in history if t.ai_message][-settings.CHAT_HISTORY_TURNS:]
    first_with_images = max(0, len(answered) - settings.CHAT_HISTORY_IMAGE_TURNS) if user else len(answered)
    for position, turn in enumerate(answered):
        show = position >= first_with_images and turn.file_used
        parts = _cited_page_parts(user=user, citations=turn.file_used) if show else []
        content = [{"type": "text", "text": turn.user_message}, *parts] if parts else turn.user_message
        messages.append({"role": "user", "content": content})
        messages.append({"role": "assistant", "content": turn.ai_message})
    if not pages:
        messages.append({"role": "user", "content": question})
        return messages
    intro = "Pages retrieved from the user's documents, numbered for citation:"
    content: list[dict] = [{"type": "text", "text": intro}]
    for page in pages:
        label = f"[{page['index']}] {page['filename']}, page {page['page_number']}"
        if page["_text"]:
            label += f"\nText layer of the page:\n{page['_text']}"
        content.append({"type": "text", "text": label})
        content.append({"type": "image_url", "image_url": {"url": page["_data_uri"]}})
    content.append({"type": "text", "text": f"Question: {question}"})
    messages.append({"role": "user", "content": content})
    return messages


def _turn_update(*, conversation_id: str, message_id: str, conversation_fields: dict | None = None,
                 **fields) -> None:
    """Set fields of one turn (and, in the same write, `conversation_fields` of the conversation)."""
    updates = {f"set__turns__S__{name}": value for name, value in fields.items()}
    updates.update({f"set__{name}": value for name, value in (conversation_fields or {}).items()})
    Conversation.objects(conversation_id=conversation_id, turns__message_id=message_id).update_one(**updates)


def _turn_push(*, conversation_id: str, turn: Turn, conversation_fields: dict | None = None) -> None:
    """Append a turn (and, in the same write, set `conversation_fields` of the conversation)."""
    updates = {"last_modify_at": utcnow(), **(conversation_fields or {})}
    Conversation.objects(conversation_id=conversation_id).update_one(
        push__turns=turn, **{f"set__{name}": value for name, value in updates.items()})


def message_ask(*, user: User, conversation_id: str, question: str, parent_message_id: str | None = LATEST_TURN,
                model_id: str | None = None, stream: bool = True) -> Answer:
    """Validate, retrieve and record the turn now; the answer streams when `events` is iterated.

    The parent defaults to the latest turn (LATEST_TURN); None starts a new root. Passing the parent of an
    earlier turn edits that question (or regenerates its answer) on a new branch, keeping both. The history
    sent to the model is the path from the root to the parent. With stream=False the model is asked for its
    whole answer at once (the events then hold one token event).
    """
    question = (question or "").strip()
    if not question:
        raise ValidationError("The question is empty.", details={"question": ["This field may not be blank."]})
    if len(question) > settings.CHAT_MAX_QUESTION_LENGTH:
        raise ValidationError(f"The question is longer than {settings.CHAT_MAX_QUESTION_LENGTH} characters.")
    context = conversation_turn_context(user=user, conversation_id=conversation_id,
                                        parent_message_id=parent_message_id)
    parent_message_id, history = context.parent_message_id, context.history
    model = model_resolve(user=user, model_id=model_id)
    # Before anything is recorded; a host name is resolved and checked where the model client connects.
    _model_url_allowed(url=model.model_url, resolve_host=False)
    knowledge_base_ids = [*model.extra.get("base_used", []), context.temp_db or ""]
    pages = _retrieve(user=user, model=model, knowledge_base_ids=knowledge_base_ids, question=question)
    citations = [{k: v for k, v in page.items() if not k.startswith("_")} for page in pages]
    messages = _messages(model=model, history=history, question=question, pages=pages, user=user)

    turn = Turn(message_id=new_id(), parent_message_id=parent_message_id, user_message=question,
                model_id=model.extra.get("model_id"), model_name=model.model_name, temp_db=context.temp_db,
                file_used=citations, status="streaming")
    if stream:
        # Readers (another tab, the messages list) see the question at once and the answer as it grows.
        _turn_push(conversation_id=conversation_id, turn=turn)
    audit_log_record(user=user, action="chat.ask", resource_type="conversation", resource_id=conversation_id,
                     details={"message_id": turn.message_id, "model_id": turn.model_id, "pages": len(citations)})
    return Answer(
        conversation_id=conversation_id, message_id=turn.message_id, parent_message_id=parent_message_id,
        citations=citations,
        events=AnswerEvents(_answer_events(conversation_id=conversation_id, turn=turn, model=model,
                                           messages=messages, citations=citations, stream=stream)),
    )


def _in_thread(events: Iterator[dict], *, keepalive: float) -> Iterator[dict | None]:
    """Iterate `events` in a daemon thread; yield None after each `keepalive` seconds of silence.

    A slow model then still lets the stream write (keeping proxies open and noticing a client that went
    away). Closing this generator asks the thread to stop; the thread closes `events` (the HTTP stream).
    """
    items: queue.Queue = queue.Queue()
    stop = threading.Event()

    def pump() -> None:
        try:
            for item in events:
                if stop.is_set():
                    break
                items.put(("item", item))
            items.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            items.put(("error", exc))
        finally:
            events.close()

    threading.Thread(target=pump, daemon=True, name="llm-stream").start()
    try:
        while True:
            try:
                kind, value = items.get(timeout=keepalive)
            except queue.Empty:
                yield None
                continue
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()


def _whole_answer(*, model: ResolvedModel, messages: list[dict]) -> Iterator[dict]:
    """The model's events for a client that waits for the whole answer: one request, one token event."""
    text, usage = complete_chat(model=model, messages=messages, timeout=settings.CHAT_LLM_TIMEOUT)
    if text:
        yield {"type": "token", "text": text}
    yield {"type": "done", "usage": usage}


def _answer_events(*, conversation_id: str, turn: Turn, model: ResolvedModel, messages: list[dict],
                   citations: list[dict], stream: bool = True) -> Iterator[tuple[str, dict]]:
    """The answer's events; the turn is stored with its outcome at the end, whatever that is.

    A streamed turn was pushed before the first token and is updated here. A whole answer has no one to watch
    it grow, so its turn is written once, here, with its answer (or its failure): one write, and nothing left
    "streaming" if the process dies meanwhile (its client sees the request fail, as it does)."""
    message_id = turn.message_id
    ids = {"conversation_id": conversation_id, "message_id": message_id}
    parts: list[str] = []
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    status, error, error_code = "failed", None, None
    if stream:
        source = _in_thread(stream_chat(model=model, messages=messages, timeout=settings.CHAT_LLM_TIMEOUT),
                            keepalive=settings.CHAT_SSE_KEEPALIVE)
    else:
        source = _whole_answer(model=model, messages=messages)
    started = time.monotonic()
    try:
        yield "citations", {**ids, "citations": citations}
        for event in source:
            if event is None:
                yield "keepalive", {}
            elif event["type"] == "token":
                parts.append(event["text"])
                yield "token", {"text": event["text"]}
            elif event["type"] == "done":
                usage = {**usage, **event["usage"]}
        if not usage["completion_tokens"] and parts:
            # The provider sent no usage: estimate it by the chunks of a stream (about a token each), or by the
            # words of a whole answer.
            estimate = len(parts) if stream else len("".join(parts).split())
            usage["completion_tokens"] = estimate
            usage["total_tokens"] = usage["prompt_tokens"] + estimate
        status = "completed"
        LLM_LATENCY.labels(source="chat").observe(time.monotonic() - started)
    except LLMError as exc:
        error, error_code = exc.message, exc.code
        LLM_ERRORS.labels(source="chat", status=str(exc.status or "error")).inc()
    except GeneratorExit:
        status, error = "cancelled", "The client went away before the answer was complete."
        raise
    except Exception:  # noqa: BLE001 - a stored turn must never stay "streaming"
        logger.exception("answer failed")
        error = "The answer failed because of an internal error."
    finally:
        source.close()
        finished = utcnow()
        outcome = {"ai_message": "".join(parts), "status": status, "error": error,
                   "prompt_tokens": usage["prompt_tokens"], "completion_tokens": usage["completion_tokens"],
                   "total_token": usage["total_tokens"], "finished_at": finished}
        conversation_fields = {"is_read": False, "last_modify_at": finished} if status == "completed" else None
        if stream:
            _turn_update(conversation_id=conversation_id, message_id=message_id,
                         conversation_fields=conversation_fields, **outcome)
        else:
            for name, value in outcome.items():
                setattr(turn, name, value)
            _turn_push(conversation_id=conversation_id, turn=turn, conversation_fields=conversation_fields)
    if status == "completed":
        yield "done", {**ids, "status": status, "usage": usage}
    else:
        yield "error", {**ids, "status": status, "message": error, "code": error_code}


def answer_collect(*, answer: Answer) -> dict:
    """Run an answer to the end for a non-streaming client; a provider failure raises ModelProviderError."""
    parts, usage, status = [], {}, "completed"
    for name, data in answer.events:
        if name == "token":
            parts.append(data["text"])
        elif name == "done":
            usage = data["usage"]
        elif name == "error":
            raise ModelProviderError(data["message"], code=data.get("code"),
                                     details={"conversation_id": answer.conversation_id,
                                              "message_id": answer.message_id, "status": data["status"]})
    return {"conversation_id": answer.conversation_id, "message_id": answer.message_id,
            "parent_message_id": answer.parent_message_id, "status": status, "answer": "".join(parts),
            "citations": answer.citations, "usage": usage}


def turns_fail_stale(*, older_than_seconds: int) -> int:
    """Mark turns still "streaming" after `older_than_seconds` (the process died mid-answer) as failed."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    failed = 0
    stale = Conversation.objects(turns__match={"status": "streaming", "timestamp__lt": cutoff}).only(
        "conversation_id", "turns.message_id", "turns.status", "turns.timestamp")
    for conversation in stale:
        for turn in conversation.turns:
            if turn.status == "streaming" and turn.timestamp < cutoff:
                _turn_update(conversation_id=conversation.conversation_id, message_id=turn.message_id,
                             status="failed", error="The answer was interrupted (the server stopped).",
                             finished_at=utcnow())
                failed += 1
    return failed
