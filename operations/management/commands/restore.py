import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from operations.backup import backup_verify, restore_run


def _total(value) -> int:
    return sum(value.values()) if isinstance(value, dict) else int(value)


def verification_report(result: dict) -> dict:
    """What the operator reads: per store the expected and restored counts, per collection whether its content
    digest matches, objects checked against their sha256, Redis keys restored, the sample search."""
    checksums = result["checksums"]
    return {
        "files_verified": result["files_verified"],
        "counts_ok": result["counts_ok"],
        "counts": {store: {"expected": _total(result["expected"].get(store, 0)), "restored": _total(value)}
                   for store, value in result["counts"].items()},
        "checksums_ok": result["checksums_ok"],
        "checksums": {"mongo": {n: r["ok"] for n, r in checksums["mongo"].items()},
                      "milvus": {n: r["ok"] for n, r in checksums["milvus"].items()},
                      "objects": {k: checksums["objects"][k] for k in ("checked", "mismatched")}},
        "redis": {"restored": result["redis"]["restored"], "expired": result["redis"]["expired"]},
        "sample_ok": result["sample_ok"],
    }


class Command(BaseCommand):
    help = ("Restore a backup directory into an empty stack, then verify it: row counts, content checksums "
            "(Mongo, Milvus, objects) and the sample search. Prints the verification report as JSON.")

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
        report = verification_report(result)
        self.stdout.write(json.dumps(report, sort_keys=True))
        if not result["counts_ok"] or not result["checksums_ok"] or result["sample_ok"] is False:
            raise CommandError("Restore verification failed: " + json.dumps(result, default=str)[:2000])
