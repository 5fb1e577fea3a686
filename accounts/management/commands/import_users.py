"""Load users from a JSON or CSV export of the original users table; prints a JSON report."""

import csv
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.user_import import users_import


def read_rows(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json" or text.lstrip()[:1] in ("[", "{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path}: not valid JSON ({exc})") from exc
        if isinstance(data, dict):
            data = data.get("users", data.get("rows"))
        if not isinstance(data, list):
            raise CommandError(f"{path}: expected a list of users (or {{\"users\": [...]}})")
        return data
    return list(csv.DictReader(text.splitlines()))


class Command(BaseCommand):
    help = "Import users (username, email, password_hash, salt) with legacy SHA256+salt hashes. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="JSON (list of objects) or CSV with a header row")
        parser.add_argument("--update", action="store_true",
                            help="re-set the hash of existing users who have not logged in since the last import")
        parser.add_argument("--dry-run", action="store_true", help="report only, write nothing")

    def handle(self, *args, file: Path, update: bool, dry_run: bool, **options):
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        report = users_import(rows=read_rows(file), update=update, dry_run=dry_run)
        self.stdout.write(json.dumps(report, indent=2))
