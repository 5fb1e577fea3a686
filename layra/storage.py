"""Object storage (django-storages S3 or the filesystem) and short-lived presigned URLs."""

from django.conf import settings
from django.core.files.storage import Storage, storages

from layra.process_local import ProcessLocal

# Bounded S3 calls: a hung S3/MinIO answers 503 within seconds (botocore's defaults wait 60 s x retries).
S3_TIMEOUTS = {"connect_timeout": 3, "read_timeout": 6, "retries": {"total_max_attempts": 2, "mode": "standard"}}


def storage() -> Storage:
    backend = storages["default"]
    if is_s3() and not getattr(backend, "_layra_bounded", False):
        from botocore.config import Config

        backend.client_config = backend.client_config.merge(Config(**S3_TIMEOUTS))
        backend._layra_bounded = True
    return backend


def _new_s3_client():
    return storage().connection.meta.client


# django-storages builds a boto3 session and resource per thread on first use (~50 ms of CPU loading the service
# model): with 32 web threads a worker paid that 32 times, inside requests. boto3 clients are thread safe.
_client = ProcessLocal(_new_s3_client)


def s3_client():
    """One boto3 S3 client per process, shared by its threads."""
    return _client.get()


def is_s3() -> bool:
    return bool(settings.AWS_STORAGE_BUCKET_NAME)


def presigned_url(key: str, *, expires: int | None = None) -> str | None:
    """A presigned GET URL (S3 only); None on the filesystem, where the API streams the file."""
    if not is_s3():
        return None
    expires = min(expires or settings.AWS_QUERYSTRING_EXPIRE, 3600)
    return s3_client().generate_presigned_url(
        "get_object", Params={"Bucket": settings.AWS_STORAGE_BUCKET_NAME, "Key": key}, ExpiresIn=expires
    )


def reset() -> None:
    # django's storage handler caches instances; forget them so a fork builds new boto clients.
    storages._storages = {}
    _client.reset()


def ensure_bucket() -> None:
    """Create the bucket when it is missing (embedded S3, first start of MinIO)."""
    if not is_s3():
        return
    client = s3_client()
    try:
        client.head_bucket(Bucket=settings.AWS_STORAGE_BUCKET_NAME)
    except Exception:  # noqa: BLE001 - missing bucket: create it
        client.create_bucket(Bucket=settings.AWS_STORAGE_BUCKET_NAME)
