import json
import sys

from django.core.management.base import BaseCommand

from operations.consistency import consistency_check


class Command(BaseCommand):
    help = "Per KB: pages in Mongo vs vectors in Milvus vs objects in storage. Exit 1 when they disagree."

    def add_arguments(self, parser):
        parser.add_argument("--kb", action="append", dest="knowledge_base_ids")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        reports = consistency_check(knowledge_base_ids=opts["knowledge_base_ids"])
        bad = [r for r in reports if not r.ok]
        if opts["json"]:
            self.stdout.write(json.dumps([r.as_dict() for r in reports], indent=1))
        else:
            for r in reports:
                line = (f"{r.knowledge_base_id}: pages={r.pages} vector_pages={r.vector_pages} objects={r.objects} "
                        f"pages_without_vectors={len(r.pages_without_vectors)} "
                        f"vectors_without_page={len(r.vectors_without_page)} "
                        f"missing_objects={len(r.missing_objects)} orphan_objects={len(r.orphan_objects)}")
                self.stdout.write(("OK   " if r.ok else "BAD  ") + line)
            self.stdout.write(f"{len(reports)} knowledge bases checked, {len(bad)} inconsistent")
        if bad:
            sys.exit(1)
