"""Object storage (django-storages S3 or the filesystem) and short-lived presigned URLs."""

from django.conf import settings
from django.core.files.storage import Storage, storages


def storage() -> Storage:
    return storages["default"]


def is_s3() -> bool:
    return bool(settings.AWS_STORAGE_BUCKET_NAME)


def presigned_url(key: str, *, expires: int | None = None) -> str | None:
    """A presigned GET URL (S3 only); None on the filesystem, where the API streams the file."""
    if not is_s3():
        return None
    expires = min(expires or settings.AWS_QUERYSTRING_EXPIRE, 3600)
    client = storage().connection.meta.client
    return client.generate_presigned_url(
        "get_object", Params={"Bucket": settings.AWS_STORAGE_BUCKET_NAME, "Key": key}, ExpiresIn=expires
    )


def reset() -> None:
    # django's storage handler caches instances; forget them so a fork builds new boto clients.
    storages._storages = {}


def ensure_bucket() -> None:
    """Create the bucket when it is missing (embedded S3, first start of MinIO)."""
    if not is_s3():
        return
    client = storage().connection.meta.client
    try:
        client.head_bucket(Bucket=settings.AWS_STORAGE_BUCKET_NAME)
    except Exception:  # noqa: BLE001 - missing bucket: create it
        client.create_bucket(Bucket=settings.AWS_STORAGE_BUCKET_NAME)
