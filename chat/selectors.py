"""Reads for model configs and conversations. Ownership is part of every query."""

from dataclasses import dataclass

from bson import json_util
from django.conf import settings

from accounts.models import User
from chat import crypto
from chat.documents import Conversation, ModelConfig, ModelEntry, Turn
from chat.llm import ResolvedModel
from layra import cache
from layra.errors import NotFound, ValidationError


def model_config_cache_key(username: str) -> str:
    return f"model_config:{username}"


def model_config_get(*, user: User) -> ModelConfig:
    """The user's model config (an empty one if none), cached for CHAT_MODEL_CONFIG_CACHE_TTL (layra.cache: a
    Redis outage reads Mongo; a write drops the entry with a tombstone: chat.services.model_config_invalidate)."""
    cached = cache.cached(model_config_cache_key, [user.username]).get(user.username)
    if cached is not None:
        return ModelConfig.from_json(cached, json_options=json_util.RELAXED_JSON_OPTIONS)
    config = ModelConfig.objects(username=user.username).first()
    if config is None:
        return ModelConfig(username=user.username, models=[])
    cache.fill(model_config_cache_key, {user.username: config.to_json(json_options=json_util.RELAXED_JSON_OPTIONS)},
               ttl=settings.CHAT_MODEL_CONFIG_CACHE_TTL)
    return config


def model_list(*, user: User) -> tuple[list[ModelEntry], str | None]:
    config = model_config_get(user=user)
    return list(config.models), config.selected_model


def model_get(*, user: User, model_id: str) -> ModelEntry:
    config = model_config_get(user=user)
    for entry in config.models:
        if entry.model_id == model_id:
            return entry
    raise NotFound("Model not found.")


def model_selected(*, user: User) -> ModelEntry | None:
    config = model_config_get(user=user)
    if not config.selected_model:
        return None
    return next((m for m in config.models if m.model_id == config.selected_model), None)


def model_resolve(*, user: User, model_id: str | None = None) -> ResolvedModel:
    """The model to call, API key decrypted. None = the selected model; another user's id is a 404."""
    if model_id:
        entry = model_get(user=user, model_id=model_id)
    else:
        entry = model_selected(user=user)
        if entry is None:
            raise ValidationError(
                "No model is selected. Add a model with POST /api/v1/models/ and select it with "
                "PUT /api/v1/models/selected/.",
                code="no_model_selected",
            )
    return ResolvedModel(
        model_name=entry.model_name,
        model_url=entry.model_url,
        api_key=crypto.decrypt(entry.api_key),
        system_prompt=entry.system_prompt or "",
        temperature=entry.temperature,
        max_length=entry.max_length,
        top_P=entry.top_P,
        extra={
            "model_id": entry.model_id,
            "base_used": list(entry.base_used or []),
            "top_K": entry.top_K,
            "score_threshold": entry.score_threshold,
        },
    )


def conversation_get(*, user: User, conversation_id: str) -> Conversation:
    conversation = Conversation.objects(conversation_id=conversation_id, username=user.username,
                                        is_delete__ne=True).first()
    if conversation is None:
        raise NotFound("Conversation not found.")
    return conversation


def conversation_list(*, user: User):
    """The user's conversations, most recently active first, without their turns."""
    return (Conversation.objects(username=user.username, is_delete__ne=True).exclude("turns")
            .order_by("-last_modify_at", "-created_at"))


def _turn_field(turn, name: str):
    return turn.get(name) if isinstance(turn, dict) else getattr(turn, name)


def _branch(turns: list, message_id: str | None) -> list:
    """The turns (Turn objects or raw dicts) from the first question down to `message_id`; [] for None."""
    if not message_id:
        return []
    by_id = {_turn_field(turn, "message_id"): turn for turn in turns}
    if message_id not in by_id:
        raise NotFound("Message not found in this conversation.")
    path: list = []
    seen: set[str] = set()
    current = by_id.get(message_id)
    while current is not None and _turn_field(current, "message_id") not in seen:
        seen.add(_turn_field(current, "message_id"))
        path.append(current)
        parent = _turn_field(current, "parent_message_id")
        current = by_id.get(parent) if parent else None
    path.reverse()
    return path


def conversation_path(*, conversation: Conversation, message_id: str | None) -> list[Turn]:
    """The turns from the first question down to `message_id` (the history of a branch); [] for None."""
    return _branch(conversation.turns, message_id)


LATEST_TURN = "latest"
# What a history sent to the model reads of each turn (chat.prompt.messages_build).
HISTORY_FIELDS = ("message_id", "parent_message_id", "user_message", "ai_message", "file_used")


@dataclass
class TurnContext:
    temp_db: str | None
    parent_message_id: str | None
    history: list[Turn]


def conversation_turn_context(*, user: User, conversation_id: str,
                              parent_message_id: str | None = LATEST_TURN) -> TurnContext:
    """What a new turn needs: the conversation's temporary KB, its parent (LATEST_TURN: the last turn) and the
    history, the path from the first question down to that parent.

    The turns come back raw with only the history's fields, and Turn objects are built for the path alone:
    building every turn of a long conversation through mongoengine was most of a chat turn's CPU."""
    raw = (Conversation.objects(conversation_id=conversation_id, username=user.username, is_delete__ne=True)
           .only("temp_db", *(f"turns.{name}" for name in HISTORY_FIELDS)).as_pymongo().first())
    if raw is None:
        raise NotFound("Conversation not found.")
    turns = raw.get("turns") or []
    if parent_message_id == LATEST_TURN:
        parent_message_id = turns[-1]["message_id"] if turns else None
    path = _branch(turns, parent_message_id)
    return TurnContext(temp_db=raw.get("temp_db"), parent_message_id=parent_message_id,
                       history=[Turn._from_son(turn) for turn in path])


def conversation_leaf(*, conversation: Conversation) -> str | None:
    """The latest turn: where a question continues when the client names no parent."""
    return conversation.turns[-1].message_id if conversation.turns else None


def conversation_ids_existing(*, conversation_ids: list[str]) -> set[str]:
    """Operators (cleanup of orphaned temp KBs): which of these conversations still exist (in the trash too),
    any owner."""
    return set(Conversation.objects(conversation_id__in=list(conversation_ids)).distinct("conversation_id"))


def model_resolve_named(*, user: User, model: str) -> ResolvedModel:
    """The model an OpenAI-style client names: one of the user's model config ids, or a model_name that exactly
    one of the user's configs has."""
    config = model_config_get(user=user)
    if any(entry.model_id == model for entry in config.models):
        return model_resolve(user=user, model_id=model)
    named = [entry for entry in config.models if entry.model_name == model]
    if len(named) > 1:
        raise ValidationError(f"Several of your models are named {model!r}; name one by its model id.",
                              code="model_ambiguous", details={"model": [entry.model_id for entry in named]})
    if not named:
        raise NotFound(f"The model {model!r} does not exist (give a model id or name from GET models).",
                       code="model_not_found")
    return model_resolve(user=user, model_id=named[0].model_id)
