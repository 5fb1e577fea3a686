import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from operations.backup import backup_verify, restore_run


class Command(BaseCommand):
    help = "Restore a backup directory into an empty stack, then verify counts and the sample search."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--dry-run", action="store_true", help="only verify the checksums")
        parser.add_argument("--force", action="store_true", help="restore even if the stack is not empty")

    def handle(self, *args, **opts):
        if opts["dry_run"]:
            manifest = backup_verify(directory=opts["directory"])
            self.stdout.write(f"[dry run] {len(manifest['files'])} files verified")
            return
        with tqdm(unit="item", disable=opts["verbosity"] < 1, file=self.stderr._out) as bar:
            result = restore_run(directory=opts["directory"], force=opts["force"], on_item=lambda _i: bar.update(1))
        self.stdout.write(json.dumps({"counts_ok": result["counts_ok"], "sample_ok": result["sample_ok"]}))
        if not result["counts_ok"] or result["sample_ok"] is False:
            raise CommandError("Restore verification failed: " + json.dumps(result, default=str)[:2000])
