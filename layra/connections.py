"""Reset every process-local client; called after a fork (Celery worker_process_init)."""

from layra import milvus, mongo, redis, storage


def reset_all() -> None:
    mongo.reset()
    redis.reset()
    milvus.reset()
    storage.reset()
