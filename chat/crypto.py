"""Model API keys at rest: MultiFernet over settings.FIELD_ENCRYPTION_KEYS (the first encrypts, all decrypt).

A key of its own, not derived from SECRET_KEY: rotating one does not touch the other. To rotate, put a new key
first in FIELD_ENCRYPTION_KEYS, keep the old ones after it, run `manage.py rotate_field_keys`, then drop them."""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from layra.errors import ValidationError


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet(fernets(keys=keys))


def fernets(*, keys: tuple[str, ...] | None = None) -> list[Fernet]:
    """One Fernet per configured key, the encrypting one first."""
    return [Fernet(key.encode()) for key in (keys if keys is not None else settings.FIELD_ENCRYPTION_KEYS)]


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode() if value else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValidationError(
            "The stored API key cannot be decrypted (the encryption key changed); enter the API key again."
        ) from None


def rotate(token: str) -> str:
    """`token` encrypted again with the first key; InvalidToken when no key decrypts it."""
    return fernet().rotate(token.encode()).decode() if token else ""


def mask(value: str) -> str:
    """'sk-abcdef...wxyz' -> 'sk-...wxyz'; short keys are fully hidden."""
    if not value:
        return ""
    if len(value) < 12:
        return "****"
    return f"{value[:3]}...{value[-4:]}"
