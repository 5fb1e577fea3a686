"""Model API keys at rest: Fernet with settings.FIELD_ENCRYPTION_KEY (or a key derived from SECRET_KEY)."""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from layra.errors import ValidationError


@lru_cache(maxsize=4)
def _fernet(configured: str, secret: str) -> Fernet:
    if configured:
        return Fernet(configured.encode())
    digest = hashlib.sha256(f"layra-field-encryption:{secret}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def fernet() -> Fernet:
    return _fernet(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY)


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


def mask(value: str) -> str:
    """'sk-abcdef...wxyz' -> 'sk-...wxyz'; short keys are fully hidden."""
    if not value:
        return ""
    if len(value) < 12:
        return "****"
    return f"{value[:3]}...{value[-4:]}"
