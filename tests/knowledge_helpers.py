"""Helpers for knowledge tests: upload shortcuts, store inspection, waiting on jobs."""

import time

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile


def uploaded(name: str, data: bytes, content_type: str = "application/octet-stream") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def bucket_keys(prefix: str = "") -> list[str]:
    from layra.storage import s3_client

    client = s3_client()
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.AWS_STORAGE_BUCKET_NAME,
                                                                  Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def collection_name(knowledge_base_id: str) -> str:
    return "colqwen" + knowledge_base_id.replace("-", "_")


def file_vectors(knowledge_base_id: str, file_id: str) -> list[dict]:
    from layra.milvus import milvus_client

    client = milvus_client()
    name = collection_name(knowledge_base_id)
    if not client.has_collection(name):
        return []
    client.load_collection(name)
    return client.query(name, filter=f'file_id == "{file_id}"', output_fields=["image_id", "page_number"],
                        limit=16384)


def wait_job(task_id: str, *, timeout: float = 120, worker=None, states=("completed", "failed", "cancelled")):
    from knowledge.models import IngestionJob

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = IngestionJob.objects.filter(task_id=task_id).first()
        if job is not None and job.state in states:
            return job
        time.sleep(0.2)
    log = worker.log()[-4000:] if worker is not None else ""
    raise AssertionError(f"job {task_id} did not reach {states} in {timeout}s\n{log}")
