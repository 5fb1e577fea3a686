"""The Milvus client: Milvus Lite (a file path) by default, a server URI in production."""

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from pymilvus import MilvusClient, MilvusException

from layra.store_errors import store_unavailable

_client: MilvusClient | None = None
_generation = 0
_lock = threading.Lock()
# Every call gets a deadline unless the caller gives one: a hung server answers 503, never a hung request.
CALL_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
_UNTIMED = {"close", "get_server_type", "session"}


class BoundedMilvusClient(MilvusClient):
    """MilvusClient whose calls default to a gRPC deadline (pymilvus waits forever by default)."""

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if name.startswith("_") or not callable(attr) or name in _UNTIMED:
            return attr

        def call(*args, **kwargs):
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = CALL_TIMEOUT
            return attr(*args, **kwargs)

        return call


_features: dict[int, "ServerFeatures"] = {}


def milvus_client() -> MilvusClient:
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                uri = settings.MILVUS_URI
                if "://" not in uri:
                    Path(uri).parent.mkdir(parents=True, exist_ok=True)
                _client = _connect(uri)
    return _client


def _connect(uri: str) -> MilvusClient:
    """A client; a second try when the server dropped the new channel (a Milvus Lite server answered a fresh
    connection with GOAWAY "Too many pings" once in a full test run; a new channel then works)."""
    try:
        return BoundedMilvusClient(uri=uri, token=settings.MILVUS_TOKEN or "", timeout=CONNECT_TIMEOUT)
    except MilvusException as exc:
        if not store_unavailable(exc):
            raise
        time.sleep(0.5)
        return BoundedMilvusClient(uri=uri, token=settings.MILVUS_TOKEN or "", timeout=CONNECT_TIMEOUT)


def client_generation() -> int:
    """Changes with every reset: caches of what a server holds (collections made, features) key on it."""
    return _generation


def reset() -> None:
    global _client, _generation
    _generation += 1
    _features.clear()
    if _client is not None:
        try:
            _client.close()
        except Exception:  # noqa: BLE001 - a dead client must not stop a reconnect
            pass
    _client = None


@dataclass(frozen=True)
class ServerFeatures:
    version: tuple[int, int]
    bm25: bool  # full-text search: BM25 functions, sparse vectors (2.5+)
    inverted: bool  # INVERTED scalar indexes (2.4+); 2.3 has Trie for VARCHAR




def server_features(client: MilvusClient | None = None) -> ServerFeatures:
    """What the connected server supports, from its version (asked once per client)."""
    client = client or milvus_client()
    known = _features.get(id(client))
    if known is None:
        version = _parse_version(str(client.get_server_version()))
        known = ServerFeatures(version=version, bm25=version >= (2, 5), inverted=version >= (2, 4))
        _features[id(client)] = known
    return known


def _parse_version(text: str) -> tuple[int, int]:
    """"v2.3.5-lite" (the `milvus` package's 2.3 server) is 2.3; Milvus Lite 3.x implements the 2.5 API."""
    match = re.search(r"(\d+)\.(\d+)", text)
    if match is None:
        return (2, 5)
    major, minor = int(match.group(1)), int(match.group(2))
    return (2, 5) if major >= 3 else (major, minor)
