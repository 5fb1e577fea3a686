"""MongoDB through mongoengine: registered lazily (connect=False), re-registered after fork."""

import mongoengine
from django.conf import settings
from mongoengine.connection import DEFAULT_CONNECTION_NAME, disconnect, get_db

_connected_uri: str | None = None
SOCKET_TIMEOUT_MS = 10000


class Document(mongoengine.Document):
    """Base of every stored document: collections and indexes are made by `ensure_indexes`, never on first use.

    mongoengine's default makes every process send createIndexes for each collection it first touches, i.e.
    DDL racing live writes whenever a web or worker process starts. SecantusDB deadlocks when a collection is
    created by createIndexes while another connection's insert creates it (seen as every later Mongo call timing
    out); MongoDB copes, but DDL belongs to the deploy step (`manage.py ensure_indexes`) on either.
    """

    meta = {"abstract": True, "auto_create_index": False}


def connect() -> None:
    global _connected_uri
    uri = settings.MONGODB_URI
    if _connected_uri == uri:
        return
    disconnect(DEFAULT_CONNECTION_NAME)
    # Bounded waits: a hung or partitioned server answers 503 in seconds, never a request that hangs.
    mongoengine.connect(host=uri, connect=False, uuidRepresentation="standard", tz_aware=True,
                        serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, socketTimeoutMS=SOCKET_TIMEOUT_MS)
    _connected_uri = uri
    reset_document_collections()


def reset() -> None:
    """Drop the client (after a fork, or when the URI changes) and register again."""
    global _connected_uri
    disconnect(DEFAULT_CONNECTION_NAME)
    _connected_uri = None
    connect()


def database():
    connect()
    return get_db()


def reset_document_collections() -> None:
    """mongoengine caches collection handles per Document class; clear them after a drop or reconnect."""
    from mongoengine.base import _document_registry

    for doc_cls in _document_registry.values():
        if hasattr(doc_cls, "_collection"):
            doc_cls._collection = None
