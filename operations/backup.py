"""Backup and restore of every store into a directory with a manifest and sha256 checksums.

Layout: mysql.json (Django serialization of the ORM tables), mongo/<collection>.json (Extended JSON, one
document per line), milvus/<collection>.jsonl (info line, then rows with vector and scalar fields, for each
embedder's shared collection), objects/<key>, redis/<purpose>.jsonl (operations/redis_dump.py),
manifest.json ({"files": {path: sha256}, "counts": {...}, "digests": {"mongo": {...}, "milvus": {...}},
"redis": {...}, "sample": {...}}). The lexical index is rebuilt from the pages' text layer on restore.

A restore checks what it wrote against the manifest, store by store: Mongo and Milvus content digests
(operations/checksums.py: order-free, primary keys left out), each object's sha256 read back from storage,
row counts, and the sample search.
"""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from bson import json_util
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.management import call_command

from embeddings.collections import dense_collection_ensure, embedder_of
from embeddings.services import vectors_insert
from knowledge.search import search
from layra.errors import ValidationError
from layra.milvus import milvus_client
from layra.mongo import database, reset_document_collections
from layra.redis import redis_client
from layra.storage import object_keys, storage
from operations.checksums import (
    VECTOR_ROW_FIELDS,
    file_sha256,
    milvus_digest,
    mongo_digest,
    mongo_docs_digest,
    vector_rows_digest,
)
from operations.indexes import ensure_indexes
from operations.redis_dump import redis_dump, redis_restore
from operations.reindex import lexical_backfill
from operations.stores import collection_rows, kb_collections

MYSQL_EXCLUDE = ["contenttypes", "auth.permission", "sessions", "admin.logentry"]
FORMAT_VERSION = 2  # 2: redis/ and content digests; a version 1 backup restores without them


def store_counts() -> dict:
    """Rows per store (MySQL per model, Mongo per collection, Milvus per collection, objects)."""
    mysql = {}
    for model in apps.get_models():
        label = model._meta.label_lower
        if any(label.startswith(x) for x in MYSQL_EXCLUDE):
            continue
        mysql[label] = model.objects.count()
    db = database()
    mongo = {}
    for name in sorted(db.list_collection_names()):
        count = db[name].count_documents({})
        if count:  # an empty collection (made by ensure_indexes) is the same as none
            mongo[name] = count
    milvus = {}
    for name in kb_collections():
        milvus[name] = sum(1 for _ in collection_rows(name, fields=["pk"]))

    return {"mysql": mysql, "mongo": mongo, "milvus": milvus, "objects": sum(1 for _ in object_keys())}


def _sample(sample_query: dict | None) -> dict | None:
    """A search to repeat after restore: {"username", "knowledge_base_ids", "query", "results"}."""
    if not sample_query:
        return None


    user = get_user_model().objects.get(username=sample_query["username"])
    results = search(user=user, knowledge_base_ids=sample_query["knowledge_base_ids"],
                     query=sample_query["query"], top_k=5)
    return {**sample_query, "results": [[r["image_id"], round(r["score"], 4)] for r in results]}


def _dump_mongo(root: Path, on_item: Callable[[str], None] | None) -> dict[str, str]:
    db = database()
    digests = {}
    for name in sorted(db.list_collection_names()):
        docs = list(db[name].find({}))
        with (root / "mongo" / f"{name}.json").open("w") as fh:
            for doc in docs:
                fh.write(json_util.dumps(doc, json_options=json_util.CANONICAL_JSON_OPTIONS) + "\n")
        if docs:  # an empty collection restores as none (counts treat them alike)
            digests[name] = mongo_docs_digest(docs)
        if on_item:
            on_item(f"mongo:{name}")
    return digests


def _dump_milvus(root: Path, on_item: Callable[[str], None] | None) -> dict[str, str]:
    fields = VECTOR_ROW_FIELDS
    digests = {}
    for name in kb_collections():
        embedder, dim = embedder_of(name)
        rows = list(collection_rows(name, fields=fields))
        with (root / "milvus" / f"{name}.jsonl").open("w") as fh:
            fh.write(json.dumps({"collection": name, "embedder": embedder, "dim": dim}) + "\n")
            for row in rows:
                fh.write(json.dumps({k: (list(map(float, row[k])) if k == "vector" else row[k])
                                     for k in fields}) + "\n")
        digests[name] = vector_rows_digest(rows, fields)
        if on_item:
            on_item(f"milvus:{name}")
    return digests


def _dump_objects(root: Path, on_item: Callable[[str], None] | None) -> None:
    store = storage()
    for key in object_keys():
        target = root / "objects" / key
        target.parent.mkdir(parents=True, exist_ok=True)
        with store.open(key, "rb") as src:
            target.write_bytes(src.read())
        if on_item:
            on_item(f"object:{key}")


def backup_run(*, directory: str, sample_query: dict | None = None,
               on_item: Callable[[str], None] | None = None) -> dict:
    root = Path(directory)
    if root.exists() and any(root.iterdir()):
        raise ValidationError(f"Backup directory {root} is not empty.")
    (root / "mongo").mkdir(parents=True)
    (root / "milvus").mkdir()
    (root / "objects").mkdir()
    with (root / "mysql.json").open("w") as fh:
        call_command("dumpdata", exclude=MYSQL_EXCLUDE, natural_foreign=False, stdout=fh, verbosity=0)
    digests = {"mongo": _dump_mongo(root, on_item), "milvus": _dump_milvus(root, on_item)}
    _dump_objects(root, on_item)
    redis_keys = redis_dump(root / "redis")
    manifest = {
        "format": FORMAT_VERSION,
        "counts": store_counts(),
        "digests": digests,
        "redis": redis_keys,
        "sample": _sample(sample_query),
        "files": {str(p.relative_to(root)): file_sha256(p) for p in sorted(root.rglob("*")) if p.is_file()},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def backup_verify(*, directory: str) -> dict:
    root = Path(directory)
    manifest = json.loads((root / "manifest.json").read_text())
    bad = [path for path, digest in manifest["files"].items()
           if not (root / path).is_file() or file_sha256(root / path) != digest]
    if bad:
        raise ValidationError("Backup checksums do not match.", details={"files": bad[:50]})
    return manifest


def stack_is_empty() -> bool:
    counts = store_counts()
    return (not any(counts["mongo"].values()) and not counts["milvus"] and not counts["objects"]
            and not any(counts["mysql"].values()))


def _restore_mongo(root: Path, on_item: Callable[[str], None] | None) -> None:
    db = database()
    for path in sorted((root / "mongo").glob("*.json")):
        docs = [json_util.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if docs:
            db[path.stem].insert_many(docs)
        if on_item:
            on_item(f"mongo:{path.stem}")
    reset_document_collections()


def _restore_milvus(root: Path, on_item: Callable[[str], None] | None) -> None:
    client = milvus_client()
    for path in sorted((root / "milvus").glob("*.jsonl")):
        with path.open() as fh:
            info = json.loads(fh.readline())
            name = dense_collection_ensure(embedder=info["embedder"], dim=int(info["dim"]), client=client)
            by_file: dict[tuple, list] = {}
            for line in fh:
                row = json.loads(line)
                by_file.setdefault((row["knowledge_base_id"], row["username"], row["file_id"]), []).append(row)
            for (kb_id, username, file_id), rows in by_file.items():
                vectors_insert(name=name, knowledge_base_id=kb_id, username=username, file_id=file_id, client=client,
                               pages=[(r["image_id"], r["page_number"], [r["vector"]]) for r in rows])
        if on_item:
            on_item(f"milvus:{name}")


def _restore_objects(root: Path, on_item: Callable[[str], None] | None) -> None:
    store = storage()
    objects_root = root / "objects"
    for path in sorted(objects_root.rglob("*")):
        if path.is_file():
            store.save(str(path.relative_to(objects_root)), ContentFile(path.read_bytes()))
            if on_item:
                on_item(f"object:{path.relative_to(objects_root)}")


def _object_mismatches(manifest: dict) -> tuple[int, list[str]]:
    """Each object read back from storage against the sha256 of its file in the backup."""
    checked, bad = 0, []
    store = storage()
    for path, digest in manifest["files"].items():
        if not path.startswith("objects/"):
            continue
        key = path[len("objects/"):]
        checked += 1
        try:
            with store.open(key, "rb") as fh:
                data = fh.read()
        except Exception:  # noqa: BLE001 - a missing object is a mismatch, reported with the others
            data = None
        if data is None or hashlib.sha256(data).hexdigest() != digest:
            bad.append(key)
    return checked, bad


def _digest_report(expected: dict, actual: dict) -> dict:
    return {name: {"expected": digest, "actual": actual.get(name), "ok": actual.get(name) == digest}
            for name, digest in sorted(expected.items())}


def restore_checksums(manifest: dict, *, mongo: dict | None = None) -> dict:
    """Content checks of a restored stack against the backup's manifest (empty for a version 1 backup).
    `mongo` is taken before anything rewrites a document (the restore's own version bumps)."""
    expected = manifest.get("digests") or {}
    checked, bad = _object_mismatches(manifest)
    report = {
        "mongo": _digest_report(expected.get("mongo", {}), mongo or {}),
        "milvus": _digest_report(expected.get("milvus", {}),
                                 {name: milvus_digest(name) for name in kb_collections()}),
        "objects": {"checked": checked, "mismatched": bad[:50], "ok": not bad},
    }
    report["ok"] = (report["objects"]["ok"] and all(r["ok"] for r in report["mongo"].values())
                    and all(r["ok"] for r in report["milvus"].values()))
    return report


def restore_run(*, directory: str, force: bool = False, on_item: Callable[[str], None] | None = None) -> dict:
    """Restore a verified backup into an empty stack; returns {"counts", "expected", "counts_ok", "checksums",
    "checksums_ok", "files_verified", "redis", "sample_ok"}."""
    root = Path(directory)
    manifest = backup_verify(directory=directory)
    if not force and not stack_is_empty():
        raise ValidationError("The stack is not empty; restore only into an empty stack (or pass force).")
    call_command("loaddata", str(root / "mysql.json"), verbosity=0)
    _restore_mongo(root, on_item)
    mongo_now = {name: mongo_digest(name) for name in (manifest.get("digests") or {}).get("mongo", {})}
    _restore_milvus(root, on_item)
    _restore_objects(root, on_item)
    redis_report = redis_restore(root / "redis")
    ensure_indexes()
    lexical_backfill()  # the lexical index is derived from the pages' text layer in Mongo
    # The cache db holds only derived values (KB summaries and lists, search results, model configs) of what was
    # there before: drop them all rather than serve them over the restored data.
    redis_client("cache").flushdb()
    counts = store_counts()
    checksums = restore_checksums(manifest, mongo=mongo_now)
    sample = manifest.get("sample")
    sample_ok = None
    if sample:
        again = _sample({k: sample[k] for k in ("username", "knowledge_base_ids", "query")})
        sample_ok = [r[0] for r in again["results"]] == [r[0] for r in sample["results"]]
    return {"counts": counts, "expected": manifest["counts"], "counts_ok": counts == manifest["counts"],
            "checksums": checksums, "checksums_ok": checksums["ok"], "files_verified": len(manifest["files"]),
            "redis": {**redis_report, "expected": manifest.get("redis", {})}, "sample_ok": sample_ok}
