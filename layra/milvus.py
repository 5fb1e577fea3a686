"""The Milvus client: Milvus Lite (a file path) by default, a server URI in production."""

import threading
from pathlib import Path

from django.conf import settings
from pymilvus import MilvusClient

_client: MilvusClient | None = None
_lock = threading.Lock()


def milvus_client() -> MilvusClient:
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                uri = settings.MILVUS_URI
                if "://" not in uri:
                    Path(uri).parent.mkdir(parents=True, exist_ok=True)
                _client = MilvusClient(uri=uri, token=settings.MILVUS_TOKEN or "")
    return _client


def reset() -> None:
    global _client
    if _client is not None:
        try:
            _client.close()
        except Exception:  # noqa: BLE001 - a dead client must not stop a reconnect
            pass
    _client = None
