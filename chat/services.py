"""Writes for model configs and conversations, and the retrieval-augmented answer."""

import time

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator

from accounts.models import User
from accounts.services import audit_log_record
from chat import crypto
from chat.documents import ModelConfig, ModelEntry, utcnow
from chat.llm import LLMError, ResolvedModel, complete_chat
from chat.selectors import model_config_cache_key, model_resolve
from knowledge.selectors import knowledge_bases_for_search
from layra.errors import NotFound, ValidationError
from layra.ids import new_id
from layra.redis import redis_client

_MODEL_FIELDS = ("model_name", "model_url", "base_used", "system_prompt", "temperature", "max_length", "top_P",
                 "top_K", "score_threshold")
_url_validator = URLValidator(schemes=["http", "https"])


def _model_config_invalidate(*, username: str) -> None:
    redis_client("cache").delete(model_config_cache_key(username))


def _model_config_for_update(*, user: User) -> ModelConfig:
    config = ModelConfig.objects(username=user.username).first()
    if config is None:
        config = ModelConfig(username=user.username, models=[])
    return config


def _model_config_save(*, config: ModelConfig) -> None:
    config.save()
    _model_config_invalidate(username=config.username)


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
        cleaned["model_url"] = url
    if "base_used" in cleaned:
        ids = list(dict.fromkeys(cleaned["base_used"] or []))
        if ids:
            knowledge_bases_for_search(user=user, knowledge_base_ids=ids)  # another user's KB is a 404
        cleaned["base_used"] = ids
    if "system_prompt" in cleaned:
        cleaned["system_prompt"] = cleaned["system_prompt"] or ""
    if "top_K" in cleaned and cleaned["top_K"] is None:
        cleaned["top_K"] = 3
    return cleaned


def _set_api_key(entry: ModelEntry, api_key: str) -> None:
    entry.api_key = crypto.encrypt(api_key)
    entry.api_key_hint = crypto.mask(api_key)


def model_create(*, user: User, model_name: str, model_url: str, api_key: str = "", select: bool = False,
                 **fields) -> ModelEntry:
    """Add a model to the user's config; the first model (or select=True) becomes the selected one."""
    cleaned = _clean_model_fields(user=user, fields={**fields, "model_name": model_name, "model_url": model_url})
    entry = ModelEntry(model_id=new_id(), **cleaned)
    _set_api_key(entry, api_key or "")
    config = _model_config_for_update(user=user)
    config.models.append(entry)
    if select or not config.selected_model:
        config.selected_model = entry.model_id
    _model_config_save(config=config)
    audit_log_record(user=user, action="model.create", resource_type="model", resource_id=entry.model_id,
                     details={"model_name": entry.model_name})
    return entry


def _entry_for_update(config: ModelConfig, model_id: str) -> ModelEntry:
    for entry in config.models:
        if entry.model_id == model_id:
            return entry
    raise NotFound("Model not found.")


def model_update(*, user: User, model_id: str, api_key: str | None = None, **fields) -> ModelEntry:
    """Change the given fields; api_key None keeps the stored key, "" removes it."""
    config = _model_config_for_update(user=user)
    entry = _entry_for_update(config, model_id)
    for name, value in _clean_model_fields(user=user, fields=fields).items():
        setattr(entry, name, value)
    if api_key is not None:
        _set_api_key(entry, api_key)
    entry.last_modify_at = utcnow()
    _model_config_save(config=config)
    audit_log_record(user=user, action="model.update", resource_type="model", resource_id=model_id,
                     details={"fields": sorted([*fields, *(["api_key"] if api_key is not None else [])])})
    return entry


def model_delete(*, user: User, model_id: str) -> None:
    config = _model_config_for_update(user=user)
    entry = _entry_for_update(config, model_id)
    config.models = [m for m in config.models if m.model_id != entry.model_id]
    if config.selected_model == model_id:
        config.selected_model = None
    _model_config_save(config=config)
    audit_log_record(user=user, action="model.delete", resource_type="model", resource_id=model_id)


def model_select(*, user: User, model_id: str) -> ModelEntry:
    config = _model_config_for_update(user=user)
    entry = _entry_for_update(config, model_id)
    config.selected_model = entry.model_id
    _model_config_save(config=config)
    return entry


def model_test(*, user: User, model_id: str, timeout: float = 15) -> dict:
    """Send a one-line prompt to the model: {"ok", "latency_ms", "reply" | "error"} (never raises LLMError)."""
    model = model_resolve(user=user, model_id=model_id)
    probe = ResolvedModel(model_name=model.model_name, model_url=model.model_url, api_key=model.api_key,
                          max_length=16)
    started = time.monotonic()
    try:
        reply, _ = complete_chat(model=probe, messages=[{"role": "user", "content": "Reply with: ok"}],
                                 timeout=timeout)
    except LLMError as exc:
        return {"ok": False, "latency_ms": round((time.monotonic() - started) * 1000, 1), "error": exc.message}
    return {"ok": True, "latency_ms": round((time.monotonic() - started) * 1000, 1), "reply": reply[:200]}
