"""Writes for model configs and conversations (the answer to a question is chat.answer)."""

import time

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator

from accounts.models import User
from accounts.services import audit_log_record
from chat import crypto
from chat.documents import Conversation, ModelConfig, ModelEntry, utcnow
from chat.llm import REFUSED, LLMError, ResolvedModel, complete_chat, model_url_check
from chat.selectors import conversation_get, model_config_cache_key, model_resolve
from chat.trash import conversation_trash
from knowledge import selectors as knowledge_selectors
from knowledge import services as knowledge_services
from knowledge.trash import knowledge_base_discard
from layra import cache, netguard
from layra.errors import NotFound, ValidationError
from layra.ids import new_id

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
        model_url_allowed(url=url)
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


def model_url_allowed(*, url: str, resolve_host: bool = True) -> None:
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
    model_url_allowed(url=model.model_url)  # a config saved before the guard, or an allowlist since shortened
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
    """To the trash with its temporary KBs; restored or purged later (chat.trash)."""
    conversation_trash(user=user, conversation_id=conversation_id)


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
    knowledge_base_discard(knowledge_base_id=kb.knowledge_base_id)  # empty: no trash
    conversation.reload()
    return conversation.temp_db


def conversation_files_upload(*, user: User, conversation_id: str, uploaded_files: list,
                              ip: str | None = None) -> list:
    """Upload files into the conversation's temporary KB; they go through the normal ingestion pipeline."""
    knowledge_base_id = conversation_temp_kb_ensure(user=user, conversation_id=conversation_id)
    return knowledge_services.files_upload(user=user, knowledge_base_id=knowledge_base_id,
                                              uploaded_files=uploaded_files, ip=ip)
