"""Outages of our stores are 503s; errors of ours (a bad Milvus filter, a MySQL deadlock) are not. Each exception
here is the one the real client raises."""

import socket

import pytest
import redis
from django.db import OperationalError
from pymilvus import MilvusClient, MilvusException
from pymongo import MongoClient

from layra.milvus import milvus_client
from layra.store_errors import store_unavailable


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_failures_of_each_client_are_outages():
    port = _closed_port()
    with pytest.raises(redis.exceptions.ConnectionError) as r:
        redis.Redis(port=port, socket_connect_timeout=1).ping()
    with pytest.raises(Exception) as m:  # noqa: B017 - pymongo's ServerSelectionTimeoutError
        MongoClient(f"mongodb://127.0.0.1:{port}", serverSelectionTimeoutMS=300).admin.command("ping")
    with pytest.raises(MilvusException) as v:
        MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=1)
    for raised in (r.value, m.value, v.value):
        assert store_unavailable(raised), raised


def test_a_wrapped_outage_is_found_through_its_cause():
    try:
        try:
            redis.Redis(port=_closed_port(), socket_connect_timeout=1).ping()
        except redis.exceptions.ConnectionError as exc:
            raise RuntimeError("cache read failed") from exc
    except RuntimeError as wrapped:
        assert store_unavailable(wrapped)


def test_our_own_errors_are_not_outages(index_stack):
    from embeddings.collections import dense_collection_ensure
    from embeddings.embedders import embedder_spec

    spec = embedder_spec()
    name = dense_collection_ensure(embedder=spec.name, dim=spec.dim)
    with pytest.raises(MilvusException) as bad_filter:
        milvus_client().query(collection_name=name, filter="knowledge_base_id === ", output_fields=["pk"])
    assert not store_unavailable(bad_filter.value)
    assert not store_unavailable(OperationalError(1213, "Deadlock found when trying to get lock"))
    assert store_unavailable(OperationalError(2006, "MySQL server has gone away"))
    assert not store_unavailable(RuntimeError("a bug"))
