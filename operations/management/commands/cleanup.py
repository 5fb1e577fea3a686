from django.core.management.base import BaseCommand
from tqdm import tqdm

from operations.cleanup import STEP_ALIASES, STEPS, cleanup_run


class Command(BaseCommand):
    help = ("Remove orphan vectors/objects, repair records without objects or vectors, purge the trash's expired "
            "items and conversations past their retention, temp KBs of purged conversations and stale progress "
            "keys.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument("--older-than-days", type=int, default=None,
                            help="purge what went to the trash this many days ago (default TRASH_RETENTION_DAYS)")
        parser.add_argument("--step", action="append", choices=[*STEPS, *STEP_ALIASES],
                            help="run only these steps (repeatable)")

    def handle(self, *args, **opts):
        steps = tuple(opts["step"] or STEPS)
        with tqdm(total=len(steps), unit="step", disable=opts["verbosity"] < 1, file=self.stderr._out) as bar:
            result = cleanup_run(dry_run=opts["dry_run"], older_than_days=opts["older_than_days"], steps=steps,
                                 on_step=lambda _s: bar.update(1))
        verb = "would fix" if opts["dry_run"] else "fixed"
        for step, count in result.items():
            self.stdout.write(f"{step}: {verb} {count}")
        self.stdout.write(f"Total: {verb} {sum(result.values())}" + (" [dry run]" if opts["dry_run"] else ""))
