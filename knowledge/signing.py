"""Short-lived signed page-image URLs: a plain <img> (no Authorization header) can show a cited page.

The signature covers the file, page, size, user id and expiry (HMAC-SHA256 under a key derived from
SECRET_KEY with its own salt); the product streams the bytes itself, never redirecting to the object store.
"""

import time

from django.conf import settings
from django.core.signing import Signer
from django.utils.crypto import constant_time_compare

SIZES = ("full", "thumb")
_SALT = "layra.page-image-url"


def _signature(*, file_id: str, page_number: int, size: str, user_id: int, expires: int) -> str:
    return Signer(salt=_SALT, algorithm="sha256").signature(f"{file_id}:{page_number}:{size}:{user_id}:{expires}")


def page_image_url(*, user, file_id: str, page_number: int, size: str = "full") -> str:
    expires = int(time.time()) + settings.PAGE_IMAGE_URL_TTL_S
    sig = _signature(file_id=file_id, page_number=page_number, size=size, user_id=user.pk, expires=expires)
    return (f"/api/v1/files/{file_id}/pages/{page_number}/image/?size={size}&uid={user.pk}&exp={expires}"
            f"&sig={sig}")


def signed_user_id(*, file_id: str, page_number: int, params) -> int | None:
    """The user id a valid, unexpired signature in these query parameters vouches for; None otherwise."""
    try:
        size, user_id, expires, sig = params["size"], int(params["uid"]), int(params["exp"]), params["sig"]
    except (KeyError, ValueError, TypeError):
        return None
    if size not in SIZES or expires < time.time() or expires > time.time() + settings.PAGE_IMAGE_URL_TTL_S + 60:
        return None
    expected = _signature(file_id=file_id, page_number=page_number, size=size, user_id=user_id, expires=expires)
    return user_id if constant_time_compare(expected, sig) else None
