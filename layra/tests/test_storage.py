"""One S3 client per process, shared by its threads; writes go as one PUT with the storage's parameters."""

import threading

from layra import storage
from layra.storage import object_get, object_put


def test_threads_share_one_client_and_a_reset_builds_a_new_one():
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(storage.s3_client())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in seen}) == 1
    assert seen[0] is storage.s3_client()
    storage.reset()  # what a fork does (layra.connections.reset_all)
    assert storage.s3_client() is not seen[0]


def test_object_put_stores_bytes_with_their_content_type_and_object_parameters(settings):
    settings.AWS_S3_OBJECT_PARAMETERS = {"CacheControl": "max-age=86400"}
    storage.reset()  # the storage reads its settings when built
    try:
        object_put(key="tests/pages/00001.jpg", data=b"\xff\xd8jpeg-bytes")
        object_put(key="tests/pages/00001.jpg", data=b"\xff\xd8rewritten")  # a retried task overwrites its own object
        head = storage.s3_client().head_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key="tests/pages/00001.jpg")
        assert head["ContentType"] == "image/jpeg"
        assert head["CacheControl"] == "max-age=86400"
        assert object_get(key="tests/pages/00001.jpg") == b"\xff\xd8rewritten"
    finally:
        settings.AWS_S3_OBJECT_PARAMETERS = {}
        storage.reset()
