"""Move per-KB vector collections into the shared per-embedder collections (see operations/vector_migration.py),
or roll the last run back (operations/vector_rollback.py)."""

import json
from dataclasses import asdict
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from layra.errors import DomainError
from operations import vector_migration
from operations.vector_rollback import migration_rollback

State = vector_migration.MigrationState


class Command(BaseCommand):
    help = ("Move per-KB Milvus collections (colqwen*) into one collection per embedder, partitioned by KB: "
            "--dry-run reports the plan; otherwise writes backup info first and verifies each KB's copy (rows, "
            "content digest, schema, indexes). --rollback rebuilds the last run's collections from its backup info.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument("--rollback", action="store_true",
                            help="undo the last migration recorded in --backup-dir")
        parser.add_argument("--backup-dir", default=None, help="where the backup-info JSON goes")

    def handle(self, *args, **options):
        directory = Path(options["backup_dir"] or (settings.DATA_DIR / "vector_migrations"))
        if options["rollback"]:
            self._rollback(directory)
        else:
            self._migrate(directory, dry_run=options["dry_run"])

    def _rollback(self, directory: Path) -> None:
        try:
            result = migration_rollback(directory=directory)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps(result, default=str))
        if result["failed"]:
            raise CommandError(f"{len(result['failed'])} collections not rolled back; see {result['backup_info']}")

    def _migrate(self, directory: Path, *, dry_run: bool) -> None:
        plan = vector_migration.migration_plan()
        todo = [p for p in plan if p.state == State.PENDING]
        summary = {"collections": len(plan), "to_migrate": len(todo), "dry_run": dry_run,
                   "orphans": [p.collection for p in plan if p.state == State.ORPHAN],
                   "plan": [{k: v for k, v in asdict(p).items() if k not in ("indexes", "digest")} for p in plan]}
        if dry_run or not todo:
            self.stdout.write(json.dumps(summary, default=str))
            return
        info = vector_migration.backup_info_write(plan, directory)
        summary["backup_info"] = str(info)
        failures = []
        for item in todo:
            try:
                vector_migration.migrate_one(item)
            except DomainError as exc:
                failures.append(exc.message)
        vector_migration.backup_info_record_outcome(info, todo)
        summary["migrated"] = [{"collection": p.collection, "target": p.target, "rows": p.copied}
                               for p in todo if p.state == State.MIGRATED]
        summary["failed"] = failures
        self.stdout.write(json.dumps(summary, default=str))
        if failures:
            raise CommandError(f"{len(failures)} collections not migrated; see {summary['backup_info']}")
