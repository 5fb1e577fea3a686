import json

from django.core.management.base import BaseCommand, CommandError

from layra.errors import DomainError
from operations.kb_import import kb_import


class Command(BaseCommand):
    help = ("Import a knowledge base archive made by `kb_export` under USER, with new ids (never a clash, the "
            "source deployment included); checks every sha256 first and prints counts against the archive's.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="the zip made by kb_export")
        parser.add_argument("--user", required=True, help="username of the new owner in this deployment")

    def handle(self, *args, **opts):
        try:
            result = kb_import(path=opts["file"], username=opts["user"])
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps({k: result[k] for k in ("knowledge_base_id", "ok", "counts", "expected")},
                                     sort_keys=True))
        if not result["ok"]:
            raise CommandError("Imported knowledge base does not match the archive: " + json.dumps(result)[:2000])
