"""The answer to a question: retrieve pages, build the prompt (chat.prompt), stream the model's answer and store
the turn with its outcome, whatever that is."""

import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings

from accounts.models import User
from accounts.services import audit_log_record
from chat.documents import Conversation, Turn, TurnStatus, utcnow
from chat.llm import LLMError, ResolvedModel, complete_chat, stream_chat
from chat.prompt import messages_build, pages_retrieve
from chat.selectors import LATEST_TURN, conversation_turn_context, model_resolve
from chat.services import model_url_allowed
from knowledge.search_filters import SearchFilters
from knowledge.selectors import knowledge_bases_for_search
from layra.errors import ModelProviderError, ValidationError
from layra.ids import new_id
from layra.metrics import LLM_ERRORS, LLM_LATENCY

logger = logging.getLogger(__name__)


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
                model_id: str | None = None, stream: bool = True, knowledge_base_ids: list[str] | None = None,
                filters: SearchFilters | None = None) -> Answer:
    """Validate, retrieve and record the turn now; the answer streams when `events` is iterated.

    The parent defaults to the latest turn (LATEST_TURN); None starts a new root. Passing the parent of an
    earlier turn edits that question (or regenerates its answer) on a new branch, keeping both. The history
    sent to the model is the path from the root to the parent. With stream=False the model is asked for its
    whole answer at once (the events then hold one token event). `knowledge_base_ids` searches these KBs for this
    turn instead of the model's saved ones (each must be one of the user's: 404 otherwise); the conversation's
    temporary KB is searched either way.
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
    model_url_allowed(url=model.model_url, resolve_host=False)
    if knowledge_base_ids is not None:
        knowledge_bases_for_search(user=user, knowledge_base_ids=knowledge_base_ids)  # 404 for another user's
    else:
        knowledge_base_ids = model.extra.get("base_used", [])
    pages = pages_retrieve(user=user, model=model, knowledge_base_ids=[*knowledge_base_ids, context.temp_db or ""],
                           question=question, filters=filters)
    citations = [{k: v for k, v in page.items() if not k.startswith("_")} for page in pages]
    messages = messages_build(model=model, history=history, question=question, pages=pages, user=user)

    turn = Turn(message_id=new_id(), parent_message_id=parent_message_id, user_message=question,
                model_id=model.extra.get("model_id"), model_name=model.model_name, temp_db=context.temp_db,
                file_used=citations, status=TurnStatus.STREAMING)
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


def model_events(*, model: ResolvedModel, messages: list[dict], stream: bool = True,
                 source_label: str = "chat") -> Iterator[tuple[str, dict]]:
    """The model's answer as events: ("keepalive", {}) during silences of a stream, ("token", {"text"}) for each
    piece, then one ("done", {"usage", "usage_estimated"}) or ("error", {"message", "code"}). Closing it closes
    the provider's stream. Shared by chat turns and the stateless answers (chat.completion)."""
    parts = 0
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    if stream:
        source = _in_thread(stream_chat(model=model, messages=messages, timeout=settings.CHAT_LLM_TIMEOUT),
                            keepalive=settings.CHAT_SSE_KEEPALIVE)
    else:
        source = _whole_answer(model=model, messages=messages)
    started = time.monotonic()
    words = 0
    try:
        for event in source:
            if event is None:
                yield "keepalive", {}
            elif event["type"] == "token":
                parts += 1
                words += len(event["text"].split())
                yield "token", {"text": event["text"]}
            elif event["type"] == "done":
                usage = {**usage, **event["usage"]}
        estimated = not usage["completion_tokens"] and parts > 0
        if estimated:
            # The provider sent no usage: estimate it by the chunks of a stream (about a token each), or by the
            # words of a whole answer.
            estimate = parts if stream else words
            usage["completion_tokens"] = estimate
            usage["total_tokens"] = usage["prompt_tokens"] + estimate
        LLM_LATENCY.labels(source=source_label).observe(time.monotonic() - started)
    except LLMError as exc:
        LLM_ERRORS.labels(source=source_label, status=str(exc.status or "error")).inc()
        yield "error", {"message": exc.message, "code": exc.code}
        return
    except GeneratorExit:
        raise
    except Exception:  # noqa: BLE001 - a failure is an event; nothing is left "streaming"
        logger.exception("answer failed")
        yield "error", {"message": "The answer failed because of an internal error.", "code": "server_error"}
        return
    finally:
        source.close()
    yield "done", {"usage": usage, "usage_estimated": estimated}


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
    status, error, error_code = TurnStatus.FAILED, None, None
    events = model_events(model=model, messages=messages, stream=stream)
    try:
        yield "citations", {**ids, "citations": citations}
        for name, data in events:
            if name == "token":
                parts.append(data["text"])
                yield "token", data
            elif name == "keepalive":
                yield "keepalive", {}
            elif name == "done":
                usage, status = data["usage"], TurnStatus.COMPLETED
            elif name == "error":
                error, error_code = data["message"], data["code"]
                if error_code == "server_error":
                    error_code = None
    except GeneratorExit:
        status, error = TurnStatus.CANCELLED, "The client went away before the answer was complete."
        raise
    except Exception:  # noqa: BLE001 - a stored turn must never stay "streaming"
        logger.exception("answer failed")
        error = "The answer failed because of an internal error."
    finally:
        events.close()
        finished = utcnow()
        outcome = {"ai_message": "".join(parts), "status": status, "error": error,
                   "prompt_tokens": usage["prompt_tokens"], "completion_tokens": usage["completion_tokens"],
                   "total_token": usage["total_tokens"], "finished_at": finished}
        conversation_fields = {"is_read": False, "last_modify_at": finished} if status == TurnStatus.COMPLETED else None
        if stream:
            _turn_update(conversation_id=conversation_id, message_id=message_id,
                         conversation_fields=conversation_fields, **outcome)
        else:
            for name, value in outcome.items():
                setattr(turn, name, value)
            _turn_push(conversation_id=conversation_id, turn=turn, conversation_fields=conversation_fields)
    if status == TurnStatus.COMPLETED:
        yield "done", {**ids, "status": status, "usage": usage}
    else:
        yield "error", {**ids, "status": status, "message": error, "code": error_code}


def answer_collect(*, answer: Answer) -> dict:
    """Run an answer to the end for a non-streaming client; a provider failure raises ModelProviderError."""
    parts, usage, status = [], {}, TurnStatus.COMPLETED
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
    stale = Conversation.objects(turns__match={"status": TurnStatus.STREAMING, "timestamp__lt": cutoff}).only(
        "conversation_id", "turns.message_id", "turns.status", "turns.timestamp")
    for conversation in stale:
        for turn in conversation.turns:
            if turn.status == TurnStatus.STREAMING and turn.timestamp < cutoff:
                _turn_update(conversation_id=conversation.conversation_id, message_id=turn.message_id,
                             status=TurnStatus.FAILED, error="The answer was interrupted (the server stopped).",
                             finished_at=utcnow())
                failed += 1
    return failed
