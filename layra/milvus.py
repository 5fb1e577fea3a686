"""The Milvus client: Milvus Lite (a file path) by default, a server URI in production."""

import threading
from pathlib import Path

from django.conf import settings
from pymilvus import MilvusClient

_client: MilvusClient | None = None
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


def milvus_client() -> MilvusClient:
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                uri = settings.MILVUS_URI
                if "://" not in uri:
                    Path(uri).parent.mkdir(parents=True, exist_ok=True)
                _client = BoundedMilvusClient(uri=uri, token=settings.MILVUS_TOKEN or "", timeout=CONNECT_TIMEOUT)
    return _client


def reset() -> None:
    global _client
    if _client is not None:
        try:
            _client.close()
        except Exception:  # noqa: BLE001 - a dead client must not stop a reconnect
            pass
    _client = None
