"""A web worker warms up before its first request; a store that is down at start does not stop it."""

import logging

from operations import warmup


def test_warm_up_loads_the_url_conf_and_builds_the_store_clients():
    from layra.milvus import milvus_client
    from layra.storage import s3_client

    assert warmup.warm_up(embedder=False) == {"url_conf": "ok", "llm_client": "ok", "object_store": "ok",
                                              "vector_store": "ok", "query_embedder": "skipped"}
    # the request path then reuses what the warm-up built
    assert s3_client() is s3_client()
    assert milvus_client() is milvus_client()


def test_a_failing_step_is_logged_and_the_rest_still_run(monkeypatch, caplog):
    def broken():
        raise ConnectionError("vector store down")

    monkeypatch.setitem(warmup.STEPS, "vector_store", broken)
    with caplog.at_level(logging.ERROR, logger="operations.warmup"):
        done = warmup.warm_up(embedder=False)
    assert done["vector_store"] == "failed"
    assert done["url_conf"] == done["object_store"] == "ok"
    assert "warm-up step vector_store failed" in caplog.text
