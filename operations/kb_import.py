"""Import a knowledge base archive (operations/kb_export.py) under a user of this deployment.

Ids: the KB, each file and each page always get new ids (pages' ids follow from their file's, as ingestion
makes them), and objects go under the new ids' keys. An import then never clashes with what is there, the
source deployment included, and importing the same archive twice gives two KBs; the archive's ids are kept in
the manifest, not reused. The KB keeps its name and recorded embedder: a deployment with another embedder
refuses to search it (`embedder_mismatch`) until `reindex` re-embeds it.

Order: every member's sha256 is checked first; objects, vectors and lexical rows are written next, the Mongo
records last, so the KB appears only when complete. A failure removes what was written and re-raises. Lexical
rows are re-indexed from the imported pages' text (the index derives them from it), then compared.
"""

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from bson import json_util
from django.contrib.auth import get_user_model

from accounts.services import audit_log_record
from embeddings.collections import dense_collection_ensure, filter_quote, rows_matching
from embeddings.lexical import lexical_index
from embeddings.services import knowledge_base_index_delete, texts_replace_file, vectors_insert
from knowledge.documents import File
from knowledge.invalidation import knowledge_base_list_invalidate
from knowledge.keys import file_prefix, kb_prefix, page_image_id
from layra.errors import NotFound, ValidationError
from layra.ids import new_id, utcnow
from layra.milvus import milvus_client
from layra.mongo import database
from layra.storage import object_keys, object_put, objects_delete_prefix
from operations.checksums import vector_rows_digest
from operations.kb_export import ARCHIVE_FORMAT, ARCHIVE_KIND, VECTOR_DIGEST_FIELDS, embedder_parts


@dataclass
class IdMap:
    """The archive's ids and object keys to the new ones."""

    knowledge_base_id: str
    files: dict[str, str] = field(default_factory=dict)
    pages: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)


def archive_read(zf: zipfile.ZipFile) -> dict:
    """The manifest, once every member it lists is present with its sha256."""
    try:
        manifest = json.loads(zf.read("manifest.json"))
    except KeyError:
        raise ValidationError("Not a knowledge base archive: no manifest.json.") from None
    if manifest.get("kind") != ARCHIVE_KIND or manifest.get("format", 0) > ARCHIVE_FORMAT:
        raise ValidationError("Not a knowledge base archive of a format this version reads.",
                              details={"kind": manifest.get("kind"), "format": manifest.get("format")})
    names = set(zf.namelist())
    bad = [n for n, digest in manifest["files"].items()
           if n not in names or hashlib.sha256(zf.read(n)).hexdigest() != digest]
    if bad:
        raise ValidationError("Archive checksums do not match.", details={"members": bad[:50]})
    return manifest


def _lines(zf: zipfile.ZipFile, name: str) -> list[str]:
    return [line for line in zf.read(name).decode().splitlines() if line.strip()]


def _id_map(file_docs: list[dict]) -> IdMap:
    ids = IdMap(knowledge_base_id=new_id())
    for doc in file_docs:
        new_file = ids.files[doc["file_id"]] = new_id()
        for page in doc.get("images", []):
            ids.pages[page["images_id"]] = page_image_id(new_file, int(page["page_number"]))
    return ids


def _import_objects(zf: zipfile.ZipFile, manifest: dict, ids: IdMap) -> None:
    for member, old_key in manifest["objects"].items():
        old_file, name = member[len("objects/"):].split("/", 1)
        new_key = file_prefix(knowledge_base_id=ids.knowledge_base_id, file_id=ids.files[old_file]) + name
        object_put(key=new_key, data=zf.read(member))
        ids.keys[old_key] = new_key


def _import_vectors(zf: zipfile.ZipFile, embedder: tuple[str, int] | None, ids: IdMap, username: str) -> None:
    rows = [json.loads(line) for line in _lines(zf, "vectors.jsonl")]
    if not rows or embedder is None:
        return
    client = milvus_client()
    name = dense_collection_ensure(embedder=embedder[0], dim=embedder[1], client=client)
    by_file: dict[str, list] = {}
    for row in rows:
        by_file.setdefault(row["file_id"], []).append(row)
    for old_file, file_rows in by_file.items():
        vectors_insert(name=name, knowledge_base_id=ids.knowledge_base_id, username=username,
                       file_id=ids.files[old_file], client=client,
                       pages=[(ids.pages[r["image_id"]], r["page_number"], [r["vector"]]) for r in file_rows])


def _file_record(doc: dict, ids: IdMap, username: str) -> dict:
    doc = {k: v for k, v in doc.items() if k != "_id"}
    doc.update(file_id=ids.files[doc["file_id"]], knowledge_db_id=ids.knowledge_base_id, username=username,
               minio_filename=ids.keys.get(doc["minio_filename"], doc["minio_filename"]),
               task_id=None)  # its ingestion job stayed in the source deployment
    doc["images"] = [{**p, "images_id": ids.pages[p["images_id"]],
                      "minio_filename": ids.keys.get(p["minio_filename"], p["minio_filename"])}
                     for p in doc.get("images", [])]
    return doc


def _kb_record(doc: dict, ids: IdMap, username: str) -> dict:
    doc = {k: v for k, v in doc.items() if k != "_id"}
    doc.update(knowledge_base_id=ids.knowledge_base_id, username=username, is_delete=False, is_temp=False,
               conversation_id=None, version=1, last_modify_at=utcnow())
    return doc


def _reindex_lexical(file_docs: list[dict], username: str) -> None:
    for doc in file_docs:
        if doc.get("status") == "completed":
            texts_replace_file(knowledge_base_id=doc["knowledge_db_id"], username=username, file_id=doc["file_id"],
                               pages=[(p["images_id"], p["page_number"], p.get("text") or "") for p in doc["images"]])


def kb_imported_counts(*, knowledge_base_id: str, embedder: tuple[str, int] | None) -> dict:
    """The same counts as an archive's manifest, read from the stores, and the id-free vector digest."""
    files = list(File.objects(knowledge_db_id=knowledge_base_id, is_delete=False))
    rows = []
    if embedder:
        client = milvus_client()
        name = dense_collection_ensure(embedder=embedder[0], dim=embedder[1], client=client)
        rows = rows_matching(client, name, expr=f"knowledge_base_id == {filter_quote(knowledge_base_id)}",
                             fields=VECTOR_DIGEST_FIELDS)
    counts = {"files": len(files), "pages": sum(len(f.images) for f in files),
              "objects": sum(1 for _ in object_keys(prefix=kb_prefix(knowledge_base_id=knowledge_base_id))),
              "vectors": len(rows), "lexical": len(lexical_index().page_ids(knowledge_base_id=knowledge_base_id))}
    return {"counts": counts, "digests": {"vectors": vector_rows_digest(rows, VECTOR_DIGEST_FIELDS)}}


def _undo(ids: IdMap) -> None:
    database().files.delete_many({"knowledge_db_id": ids.knowledge_base_id})
    database().knowledge_bases.delete_many({"knowledge_base_id": ids.knowledge_base_id})
    knowledge_base_index_delete(knowledge_base_id=ids.knowledge_base_id)
    objects_delete_prefix(prefix=kb_prefix(knowledge_base_id=ids.knowledge_base_id))


def _write(zf: zipfile.ZipFile, manifest: dict, ids: IdMap, username: str, file_docs: list[dict]) -> None:
    kb_doc = json_util.loads(zf.read("records/knowledge_base.json"))
    _import_objects(zf, manifest, ids)
    _import_vectors(zf, embedder_parts(kb_doc.get("embedder")), ids, username)
    records = [_file_record(doc, ids, username) for doc in file_docs]
    _reindex_lexical(records, username)
    if records:
        database().files.insert_many(records)
    database().knowledge_bases.insert_one(_kb_record(kb_doc, ids, username))


def kb_import(*, path: str | Path, username: str) -> dict:
    """Import the archive under `username`; returns {"knowledge_base_id", "source", "expected", "counts",
    "ok"} where ok says every count and the vector digest match the archive's."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise NotFound(f"No active user {username!r}.")
    with zipfile.ZipFile(path) as zf:
        manifest = archive_read(zf)
        file_docs = [json_util.loads(line) for line in _lines(zf, "records/files.jsonl")]
        ids = _id_map(file_docs)
        try:
            _write(zf, manifest, ids, username, file_docs)
        except BaseException:
            _undo(ids)
            raise
    knowledge_base_list_invalidate(user=user)
    audit_log_record(user=user, action="kb.import", resource_type="knowledge_base",
                     resource_id=ids.knowledge_base_id)
    found = kb_imported_counts(knowledge_base_id=ids.knowledge_base_id,
                               embedder=embedder_parts(manifest["source"]["embedder"]))
    return {"knowledge_base_id": ids.knowledge_base_id, "source": manifest["source"],
            "expected": {"counts": manifest["counts"], "digests": manifest["digests"]}, **found,
            "ok": found["counts"] == manifest["counts"] and found["digests"] == manifest["digests"]}
