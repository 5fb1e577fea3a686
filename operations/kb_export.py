"""Export one knowledge base as a zip another deployment (or this one) can import (operations/kb_import.py).

Archive layout (format 1):
  manifest.json                  kind, format, source (KB id, name, owner, embedder), counts, digests,
                                 objects ({member: original object key}), files ({member: sha256})
  records/knowledge_base.json    the KB's Mongo document (Extended JSON)
  records/files.jsonl            its live files, pages embedded (one document a line)
  objects/<file id>/<name>       each file's objects (original, page images, anything under its prefix)
  vectors.jsonl                  its dense rows in its embedder's collection: file_id, image_id, page_number, vector
  lexical.jsonl                  its lexical rows: file_id, image_id, page_number, text
The vector digest leaves ids out (page number and vector only), so it still matches after an import gives the
KB, its files and pages new ids.
"""

import hashlib
import json
import zipfile
from pathlib import Path

from bson import json_util

from embeddings.collections import dense_collection_name, filter_quote, in_filter, rows_matching
from embeddings.lexical import lexical_index
from knowledge.documents import File, KnowledgeBase
from knowledge.keys import file_prefix_of
from layra.errors import NotFound
from layra.ids import utcnow
from layra.milvus import milvus_client
from layra.mongo import database
from layra.storage import object_get, object_keys
from operations.checksums import vector_rows_digest

ARCHIVE_KIND = "layra.knowledge_base"
ARCHIVE_FORMAT = 1
VECTOR_EXPORT_FIELDS = ["file_id", "image_id", "page_number", "vector"]
VECTOR_DIGEST_FIELDS = ["page_number", "vector"]  # id-free: comparable across an import


def embedder_parts(tag: str | None) -> tuple[str, int] | None:
    """("minilm", 384) from a KB's recorded embedder "minilm:384"; None before its first file is indexed."""
    if not tag:
        return None
    name, _, dim = tag.partition(":")
    return name, int(dim)


def _extended_json(doc: dict) -> str:
    return json_util.dumps(doc, json_options=json_util.CANONICAL_JSON_OPTIONS)


class _ArchiveWriter:
    """Writes zip members and remembers each one's sha256 for the manifest."""

    def __init__(self, zf: zipfile.ZipFile):
        self.zf = zf
        self.files: dict[str, str] = {}

    def put(self, name: str, data: bytes) -> None:
        self.zf.writestr(name, data)
        self.files[name] = hashlib.sha256(data).hexdigest()

    def put_lines(self, name: str, lines: list[str]) -> None:
        self.put(name, "".join(line + "\n" for line in lines).encode())


def _file_object_keys(file: File) -> list[str]:
    prefix = file_prefix_of(file)
    keys = set(object_keys(prefix=prefix)) | {file.minio_filename} | {p.minio_filename for p in file.images}
    return sorted(k for k in keys if k)


def _export_objects(writer: _ArchiveWriter, files: list[File]) -> dict[str, str]:
    """objects/<file id>/<name under the file's prefix> (a key elsewhere keeps its whole key as the name)."""
    members = {}
    for file in files:
        prefix = file_prefix_of(file)
        for key in _file_object_keys(file):
            name = key[len(prefix):] if key.startswith(prefix) else f"elsewhere/{key}"
            member = f"objects/{file.file_id}/{name}"
            writer.put(member, object_get(key=key))
            members[member] = key
    return members


def _dense_rows(kb: KnowledgeBase, file_ids: list[str]) -> list[dict]:
    embedder = embedder_parts(kb.embedder)
    client = milvus_client()
    if embedder is None or not file_ids:
        return []
    name = dense_collection_name(embedder=embedder[0], dim=embedder[1])
    if not client.has_collection(collection_name=name):
        return []
    expr = f"knowledge_base_id == {filter_quote(kb.knowledge_base_id)} and " + in_filter("file_id", file_ids)
    rows = rows_matching(client, name, expr=expr, fields=VECTOR_EXPORT_FIELDS)
    return [{"file_id": r["file_id"], "image_id": r["image_id"], "page_number": int(r["page_number"]),
             "vector": [float(x) for x in r["vector"]]} for r in rows]


def _lexical_rows(kb: KnowledgeBase, files: list[File]) -> list[dict]:
    indexed = lexical_index().page_ids(knowledge_base_id=kb.knowledge_base_id)
    return [{"file_id": f.file_id, "image_id": p.images_id, "page_number": p.page_number, "text": p.text or ""}
            for f in files for p in f.images if indexed.get(p.images_id) == f.file_id]


def kb_export(*, knowledge_base_id: str, path: str | Path) -> dict:
    """Write the KB's archive to `path`; returns its manifest."""
    kb = KnowledgeBase.objects(knowledge_base_id=knowledge_base_id, is_delete=False).first()
    if kb is None:
        raise NotFound("Knowledge base not found.")
    files = list(File.objects(knowledge_db_id=knowledge_base_id, is_delete=False))
    db = database()
    vectors = _dense_rows(kb, [f.file_id for f in files])
    lexical = _lexical_rows(kb, files)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        writer = _ArchiveWriter(zf)
        writer.put("records/knowledge_base.json",
                   _extended_json(db.knowledge_bases.find_one({"knowledge_base_id": knowledge_base_id})).encode())
        writer.put_lines("records/files.jsonl", [_extended_json(d) for d in db.files.find(
            {"knowledge_db_id": knowledge_base_id, "is_delete": False})])
        objects = _export_objects(writer, files)
        writer.put_lines("vectors.jsonl", [json.dumps(r) for r in vectors])
        writer.put_lines("lexical.jsonl", [json.dumps(r) for r in lexical])
        manifest = {
            "kind": ARCHIVE_KIND, "format": ARCHIVE_FORMAT, "exported_at": utcnow().isoformat(),
            "source": {"knowledge_base_id": kb.knowledge_base_id, "knowledge_base_name": kb.knowledge_base_name,
                       "username": kb.username, "embedder": kb.embedder},
            "counts": {"files": len(files), "pages": sum(len(f.images) for f in files), "objects": len(objects),
                       "vectors": len(vectors), "lexical": len(lexical)},
            "digests": {"vectors": vector_rows_digest(vectors, VECTOR_DIGEST_FIELDS)},
            "objects": objects,
            "files": dict(writer.files),
        }
        zf.writestr("manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
    return manifest
