"""The lexical side of hybrid retrieval: a BM25 index of each page's text layer, one row per page."""

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

MAX_QUERY_TERMS = 64
MAX_TEXT_BYTES = 60000  # Milvus VARCHAR holds 65,535 bytes; a page's text layer is rarely a tenth of it
_TERM = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class LexicalPage:
    image_id: str
    page_number: int
    text: str


@dataclass(frozen=True)
class LexicalHit:
    knowledge_base_id: str
    file_id: str
    image_id: str
    page_number: int
    score: float  # BM25, higher is better; comparable only within one search


def query_terms(query: str) -> list[str]:
    """The query's words, lower-cased, in order, without repeats (identifiers with `_` stay whole)."""
    return list(dict.fromkeys(t.lower() for t in _TERM.findall(query)))[:MAX_QUERY_TERMS]


def text_clip(text: str) -> str:
    data = (text or "").encode("utf-8")
    return text if len(data) <= MAX_TEXT_BYTES else data[:MAX_TEXT_BYTES].decode("utf-8", "ignore")


class LexicalIndex(ABC):
    """Writes replace a file's rows whole (safe to run twice); searches filter by knowledge base ids."""

    name: str

    @abstractmethod
    def replace_file(self, *, knowledge_base_id: str, username: str, file_id: str,
                     pages: list[LexicalPage]) -> int:
        """Index these pages of a file instead of its current rows (pages without text are not stored)."""

    @abstractmethod
    def delete_file(self, *, knowledge_base_id: str, file_id: str) -> None: ...

    @abstractmethod
    def delete_knowledge_base(self, *, knowledge_base_id: str) -> None: ...

    @abstractmethod
    def delete_user(self, *, username: str) -> None:
        """Every row of this owner, in any KB (account deletion: whatever the KB records say)."""

    @abstractmethod
    def user_row_count(self, *, username: str) -> int:
        """How many rows this owner has (checks after an account deletion)."""

    @abstractmethod
    def search(self, *, knowledge_base_ids: list[str], query: str, limit: int, consistency: str = "Bounded",
               file_ids: list[str] | None = None, exclude_file_ids: list[str] | None = None) -> list[LexicalHit]:
        """Best pages by BM25 over the query's terms (any term may match), best first; only pages of `file_ids`
        when given, never pages of `exclude_file_ids` (scalar filters inside the search, before the limit)."""

    @abstractmethod
    def page_ids(self, *, knowledge_base_id: str) -> dict[str, str]:
        """{image_id: file_id} of every indexed page of the KB (consistency checks, backfill)."""
