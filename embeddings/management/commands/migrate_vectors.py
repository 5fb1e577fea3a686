"""Apply the numbered vector-schema migrations (embeddings/migrations_vectors.py) to every collection.

Records the applied version in each collection's properties, writes a backup-info JSON (collections,
counts, schema, versions) before any change, verifies row counts after. --dry-run only reports.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from embeddings.migrations_vectors import LATEST_VERSION, MIGRATIONS
from embeddings.services import SCHEMA_VERSION_KEY, collection_info
from layra.milvus import milvus_client


def _count(client, name: str) -> int:
    client.load_collection(collection_name=name)
    return int(client.query(collection_name=name, filter="", output_fields=["count(*)"])[0]["count(*)"])


class Command(BaseCommand):
    help = "Apply numbered vector-schema migrations to every Milvus collection of the product."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument("--backup-dir", default=None, help="where the backup-info JSON goes (DATA_DIR/...)")
        parser.add_argument("--prefix", default="colqwen", help="only collections with this name prefix")

    def handle(self, *args, **options):
        client = milvus_client()
        names = sorted(n for n in client.list_collections() if n.startswith(options["prefix"]))
        plan = []
        for name in names:
            info = collection_info(name=name, client=client)
            version = int(info.get("schema_version") or 1)
            pending = [(v, d) for v, d, _ in MIGRATIONS if v > version]
            plan.append({"collection": name, "version": version, "pending": [v for v, _ in pending],
                         "count": _count(client, name), "schema": client.describe_collection(collection_name=name),
                         "indexes": client.list_indexes(collection_name=name), "embedder": info.get("embedder"),
                         "dim": info.get("dim")})
        todo = [p for p in plan if p["pending"]]
        summary = {"latest_version": LATEST_VERSION, "collections": len(plan), "to_migrate": len(todo),
                   "dry_run": options["dry_run"], "plan": [
                       {k: p[k] for k in ("collection", "version", "pending", "count")} for p in plan]}
        if options["dry_run"] or not todo:
            self.stdout.write(json.dumps(summary, default=str))
            return

        backup_dir = Path(options["backup_dir"] or (settings.DATA_DIR / "vector_migrations"))
        backup_dir.mkdir(parents=True, exist_ok=True)
        backup = backup_dir / f"backup-info-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.json"
        backup.write_text(json.dumps({"created_at": datetime.now(UTC).isoformat(), "collections": plan},
                                     default=str, indent=1))
        summary["backup_info"] = str(backup)

        for item in todo:
            name = item["collection"]
            for version, _description, apply in MIGRATIONS:
                if version <= item["version"]:
                    continue
                apply(client, name)
                client.alter_collection_properties(collection_name=name,
                                                   properties={SCHEMA_VERSION_KEY: str(version)})
                item["version"] = version
            after = _count(client, name)
            if after != item["count"]:
                raise CommandError(f"{name}: {item['count']} rows before, {after} after; see {backup}")
        summary["applied"] = [{"collection": p["collection"], "version": p["version"]} for p in todo]
        self.stdout.write(json.dumps(summary, default=str))
