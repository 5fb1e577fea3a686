"""Move per-KB vector collections into the shared per-embedder collections (see knowledge/vector_migration.py)."""

import json
from dataclasses import asdict
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from layra.errors import DomainError
from operations import vector_migration


class Command(BaseCommand):
    help = ("Move per-KB Milvus collections (colqwen*) into one collection per embedder, partitioned by KB: "
            "--dry-run reports the plan; otherwise writes backup info first and verifies each KB's copy.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument("--backup-dir", default=None, help="where the backup-info JSON goes")

    def handle(self, *args, **options):
        plan = vector_migration.migration_plan()
        todo = [p for p in plan if p.state == vector_migration.MigrationState.PENDING]
        summary = {"collections": len(plan), "to_migrate": len(todo), "dry_run": options["dry_run"],
                   "orphans": [p.collection for p in plan if p.state == vector_migration.MigrationState.ORPHAN],
                   "plan": [{k: v for k, v in asdict(p).items() if k != "indexes"} for p in plan]}
        if options["dry_run"] or not todo:
            self.stdout.write(json.dumps(summary, default=str))
            return
        directory = Path(options["backup_dir"] or (settings.DATA_DIR / "vector_migrations"))
        summary["backup_info"] = str(vector_migration.backup_info_write(plan, directory))
        failures = []
        for item in todo:
            try:
                vector_migration.migrate_one(item)
            except DomainError as exc:
                failures.append(exc.message)
        summary["migrated"] = [{"collection": p.collection, "target": p.target, "rows": p.copied}
                               for p in todo if p.state == vector_migration.MigrationState.MIGRATED]
        summary["failed"] = failures
        self.stdout.write(json.dumps(summary, default=str))
        if failures:
            raise CommandError(f"{len(failures)} collections not migrated; see {summary['backup_info']}")
