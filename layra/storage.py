"""Object storage (django-storages S3 or the filesystem): reads, writes, listing and deletes by key or prefix, and
short-lived presigned URLs. Callers choose the keys; writes are idempotent (a retried task overwrites its own
object), so keys must be deterministic."""

import mimetypes
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.base import File as DjangoFile
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


# --- objects by key --------------------------------------------------------------------------------------

_PART_BYTES = 8 * 1024 * 1024  # multipart upload part size of object_put_file
_DELETE_BATCH = 1000  # the most keys one S3 DeleteObjects call takes


def _put_parameters(key: str) -> dict:
    # AWS_S3_OBJECT_PARAMETERS (encryption, cache headers) apply as they do to the storage's own writes.
    return {"ContentType": mimetypes.guess_type(key)[0] or "application/octet-stream",
            **storage().get_object_parameters(key)}


def _save_exactly(key: str, content) -> None:
    store = storage()
    store.delete(key)  # the filesystem renames on collision; keys must stay deterministic
    saved = store.save(key, content)
    if saved != key:
        raise RuntimeError(f"storage saved {saved!r} instead of {key!r}")


def object_put(*, key: str, data: bytes) -> None:
    """Store bytes under the key, replacing what was there."""
    if is_s3():
        # One PUT on the shared client (the storage's save goes through a per-thread resource and a transfer
        # manager).
        s3_client().put_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=key, Body=data, **_put_parameters(key))
        return
    _save_exactly(key, ContentFile(data))


def object_put_file(*, key: str, fileobj: BinaryIO) -> None:
    """Store a file's content read in chunks (a large upload is never whole in memory), replacing what was there."""
    fileobj.seek(0)
    if is_s3():
        from boto3.s3.transfer import TransferConfig  # boto3 loads only where S3 is configured

        config = TransferConfig(multipart_threshold=_PART_BYTES, multipart_chunksize=_PART_BYTES, use_threads=False)
        s3_client().upload_fileobj(fileobj, settings.AWS_STORAGE_BUCKET_NAME, key, ExtraArgs=_put_parameters(key),
                                   Config=config)
        return
    _save_exactly(key, DjangoFile(fileobj))  # the filesystem storage copies chunk by chunk


def object_get(*, key: str) -> bytes:
    """The object's bytes. A missing key raises (NoSuchKey, a ClientError, on S3; FileNotFoundError otherwise)."""
    if is_s3():
        # One GET. The storage's file object does a HEAD first, then a threaded transfer manager download:
        # several times the CPU for a page image of ~100 kB.
        return s3_client().get_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=key)["Body"].read()
    with storage().open(key, "rb") as fh:
        return fh.read()


def objects_delete(*, keys: list[str]) -> None:
    """Delete these objects; a missing one is not an error."""
    if not keys:
        return
    if is_s3():
        client = s3_client()
        for start in range(0, len(keys), _DELETE_BATCH):
            chunk = keys[start:start + _DELETE_BATCH]
            client.delete_objects(Bucket=settings.AWS_STORAGE_BUCKET_NAME,
                                  Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
        return
    store = storage()
    for key in keys:
        store.delete(key)


# --- objects by prefix -----------------------------------------------------------------------------------

def _s3_key_pages(prefix: str) -> Iterator[list[str]]:
    """The keys under a prefix, one S3 listing page (up to 1,000 keys) at a time."""
    paginator = s3_client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Prefix=prefix):
        yield [obj["Key"] for obj in page.get("Contents", [])]


def object_keys(*, prefix: str = "") -> Iterator[str]:
    """Every key that starts with the prefix (S3 listing order; sorted paths on the filesystem)."""
    if is_s3():
        for keys in _s3_key_pages(prefix):
            yield from keys
        return
    root = Path(storage().location)
    for path in sorted(root.rglob("*")):
        if path.is_file():
            key = str(path.relative_to(root))
            if key.startswith(prefix):
                yield key


def objects_delete_prefix(*, prefix: str) -> None:
    """Remove every object under a prefix (S3: page by page as listed; filesystem: the directory)."""
    if is_s3():
        for keys in _s3_key_pages(prefix):
            objects_delete(keys=keys)
        return
    root = Path(storage().path(prefix.rstrip("/")))
    if root.exists():
        shutil.rmtree(root, ignore_errors=True)
