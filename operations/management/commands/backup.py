import json

from django.core.management.base import BaseCommand
from tqdm import tqdm

from operations.backup import backup_run


class Command(BaseCommand):
    help = "Back up MySQL, Mongo, Milvus and objects into DIRECTORY with a manifest and sha256 checksums."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--sample-user", help="record a sample search of this user to verify on restore")
        parser.add_argument("--sample-kb", action="append", default=[])
        parser.add_argument("--sample-query", default="")

    def handle(self, *args, **opts):
        sample = None
        if opts["sample_user"] and opts["sample_query"]:
            sample = {"username": opts["sample_user"], "knowledge_base_ids": opts["sample_kb"],
                      "query": opts["sample_query"]}
        with tqdm(unit="item", disable=opts["verbosity"] < 1, file=self.stderr._out) as bar:
            manifest = backup_run(directory=opts["directory"], sample_query=sample, on_item=lambda _i: bar.update(1))
        self.stdout.write(f"Backed up {len(manifest['files'])} files to {opts['directory']}: "
                          + json.dumps({k: (sum(v.values()) if isinstance(v, dict) else v)
                                        for k, v in manifest["counts"].items()}))
