import json

from django.core.management.base import BaseCommand, CommandError

from layra.errors import DomainError
from operations.kb_export import kb_export


class Command(BaseCommand):
    help = ("Export one knowledge base (records, objects, vectors, lexical rows) as a zip with a manifest of "
            "counts and sha256 checksums, for `kb_import` here or in another deployment.")

    def add_arguments(self, parser):
        parser.add_argument("knowledge_base_id")
        parser.add_argument("file", help="the zip to write")

    def handle(self, *args, **opts):
        try:
            manifest = kb_export(knowledge_base_id=opts["knowledge_base_id"], path=opts["file"])
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps({"file": opts["file"], "source": manifest["source"],
                                      "counts": manifest["counts"]}, sort_keys=True))
