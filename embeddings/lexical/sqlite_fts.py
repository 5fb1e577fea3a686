"""BM25 over SQLite FTS5 in one file every process of the default stack opens (web, workers, commands).

SQLite is the embedded engine here because it is a file all processes share with proper locking (WAL
readers never block; writers queue on `busy_timeout`), FTS5 ranks with BM25, and it ships with Python. It is
the default stack's engine only: a distributed deployment uses Milvus' own BM25 (milvus_bm25.py).
"""

import os
import sqlite3
import threading
from pathlib import Path

from embeddings.lexical.base import LexicalHit, LexicalIndex, LexicalPage, query_terms, text_clip

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (
    id INTEGER PRIMARY KEY,
    knowledge_base_id TEXT NOT NULL,
    username TEXT NOT NULL,
    file_id TEXT NOT NULL,
    image_id TEXT NOT NULL,
    page_number INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pages_kb_file ON pages (knowledge_base_id, file_id);
CREATE VIRTUAL TABLE IF NOT EXISTS pages_fts USING fts5(
    text, content='pages', content_rowid='id', tokenize="porter unicode61 remove_diacritics 2 tokenchars '_'"
);
CREATE TRIGGER IF NOT EXISTS pages_ai AFTER INSERT ON pages BEGIN
    INSERT INTO pages_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS pages_ad AFTER DELETE ON pages BEGIN
    INSERT INTO pages_fts(pages_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
"""


class SqliteLexicalIndex(LexicalIndex):
    name = "sqlite"

    def __init__(self, *, path: Path):
        self.path = Path(path)
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        # One connection per thread and process: a connection must not cross a fork or be shared by threads.
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def replace_file(self, *, knowledge_base_id: str, username: str, file_id: str,
                     pages: list[LexicalPage]) -> int:
        rows = [(knowledge_base_id, username, file_id, p.image_id, int(p.page_number), text_clip(p.text))
                for p in pages if (p.text or "").strip()]
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM pages WHERE knowledge_base_id = ? AND file_id = ?", (knowledge_base_id, file_id))
            conn.executemany(
                "INSERT INTO pages (knowledge_base_id, username, file_id, image_id, page_number, text) "
                "VALUES (?, ?, ?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(rows)

    def delete_file(self, *, knowledge_base_id: str, file_id: str) -> None:
        self._conn().execute("DELETE FROM pages WHERE knowledge_base_id = ? AND file_id = ?",
                             (knowledge_base_id, file_id))

    def delete_knowledge_base(self, *, knowledge_base_id: str) -> None:
        self._conn().execute("DELETE FROM pages WHERE knowledge_base_id = ?", (knowledge_base_id,))

    def delete_user(self, *, username: str) -> None:
        self._conn().execute("DELETE FROM pages WHERE username = ?", (username,))

    def user_row_count(self, *, username: str) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM pages WHERE username = ?", (username,)).fetchone()[0]

    def search(self, *, knowledge_base_ids: list[str], query: str, limit: int, consistency: str = "Bounded",
               file_ids: list[str] | None = None, exclude_file_ids: list[str] | None = None) -> list[LexicalHit]:
        terms = query_terms(query)
        if not terms or not knowledge_base_ids or file_ids == []:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        marks = ",".join("?" * len(knowledge_base_ids))
        files = f" AND p.file_id IN ({','.join('?' * len(file_ids))})" if file_ids else ""
        excluded = list(exclude_file_ids or [])
        without = f" AND p.file_id NOT IN ({','.join('?' * len(excluded))})" if excluded else ""
        rows = self._conn().execute(
            "SELECT p.knowledge_base_id, p.file_id, p.image_id, p.page_number, bm25(pages_fts) AS rank "
            "FROM pages_fts JOIN pages p ON p.id = pages_fts.rowid "
            f"WHERE pages_fts MATCH ? AND p.knowledge_base_id IN ({marks}){files}{without} ORDER BY rank LIMIT ?",
            (match, *knowledge_base_ids, *(file_ids or []), *excluded, int(limit)),
        ).fetchall()
        # FTS5's bm25() is negated (lower is better); ours is higher-is-better like Milvus'.
        return [LexicalHit(knowledge_base_id=r[0], file_id=r[1], image_id=r[2], page_number=int(r[3]),
                           score=-float(r[4])) for r in rows]

    def clear(self) -> None:
        """Every row gone (tests, restore into an empty stack)."""
        self._conn().execute("DELETE FROM pages")

    def page_ids(self, *, knowledge_base_id: str) -> dict[str, str]:
        rows = self._conn().execute("SELECT image_id, file_id FROM pages WHERE knowledge_base_id = ?",
                                    (knowledge_base_id,))
        return {image_id: file_id for image_id, file_id in rows}
