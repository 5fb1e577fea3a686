"""The lexical index the settings choose: Milvus BM25 where the server has it, else SQLite FTS5 (default stack).

`LEXICAL_BACKEND`: `auto` (default), `milvus` or `sqlite`. `auto` asks the Milvus server once per process.
"""

import threading

from django.conf import settings

from embeddings.lexical.base import LexicalHit, LexicalIndex, LexicalPage, query_terms
from layra.milvus import client_generation, milvus_client, server_features

_indexes: dict[tuple, LexicalIndex] = {}
_lock = threading.Lock()


def lexical_backend() -> str:
    choice = settings.LEXICAL_BACKEND
    if choice == "auto":
        return "milvus" if server_features(milvus_client()).bm25 else "sqlite"
    return choice


def lexical_index() -> LexicalIndex:
    backend = lexical_backend()
    key = (backend, settings.LEXICAL_SQLITE_PATH, client_generation())
    index = _indexes.get(key)
    if index is None:
        with _lock:
            index = _indexes.get(key)
            if index is None:
                # Only the chosen engine is imported (pymilvus' BM25 function types need a 2.5 client).
                if backend == "milvus":
                    from embeddings.lexical.milvus_bm25 import MilvusLexicalIndex

                    index = MilvusLexicalIndex()
                else:
                    from embeddings.lexical.sqlite_fts import SqliteLexicalIndex

                    index = SqliteLexicalIndex(path=settings.LEXICAL_SQLITE_PATH)
                _indexes[key] = index
    return index


def reset() -> None:
    with _lock:
        _indexes.clear()


__all__ = ["LexicalHit", "LexicalIndex", "LexicalPage", "lexical_backend", "lexical_index", "query_terms", "reset"]
