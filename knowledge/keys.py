"""Object keys of a knowledge base's files: the stored original and the page images.

Keys are built from server-made ids only (`kb/{kb id}/{file id}/...`), never from a username: a name is not a
safe path segment (a user called `..` could not upload). Files stored before keep their objects where they are,
under `{username}/{kb id}/{file id}/`: a file's prefix is read from its stored original's key.
"""

import uuid

from knowledge.documents import File, KnowledgeBase


def kb_prefix(*, knowledge_base_id: str) -> str:
    return f"kb/{knowledge_base_id}/"


def kb_prefixes(kb: KnowledgeBase) -> list[str]:
    """Every prefix a KB's objects may be under: the id-built one, and the owner-named one of older files."""
    prefixes = [kb_prefix(knowledge_base_id=kb.knowledge_base_id)]
    name = kb.username or ""
    if name and name not in (".", "..") and "/" not in name and "\\" not in name:
        prefixes.append(f"{name}/{kb.knowledge_base_id}/")
    return prefixes


def file_prefix(*, knowledge_base_id: str, file_id: str) -> str:
    return f"{kb_prefix(knowledge_base_id=knowledge_base_id)}{file_id}/"


def original_key(*, knowledge_base_id: str, file_id: str) -> str:
    return file_prefix(knowledge_base_id=knowledge_base_id, file_id=file_id) + "original"


def file_prefix_of(file: File) -> str:
    """Where this file's objects live: beside its stored original."""
    key = file.minio_filename or ""
    if key.endswith("/original"):
        return key[: -len("original")]
    return file_prefix(knowledge_base_id=file.knowledge_db_id, file_id=file.file_id)


def pages_prefix_of(file: File) -> str:
    """Where this file's page images live."""
    return f"{file_prefix_of(file)}pages/"


def page_key(file: File, page_number: int) -> str:
    return f"{pages_prefix_of(file)}{page_number:05d}.jpg"


def page_image_id(file_id: str, page_number: int) -> str:
    """A page's id, the same on every run for the same file and page (a retried step overwrites, never adds)."""
    return str(uuid.uuid5(uuid.UUID(file_id), f"page-{page_number}"))
