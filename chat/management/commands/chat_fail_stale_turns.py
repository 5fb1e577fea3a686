import json

from django.core.management.base import BaseCommand

from chat.answer import turns_fail_stale


class Command(BaseCommand):
    help = "Mark answers left 'streaming' by a crashed process as failed; prints JSON."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, default=3600, help="Seconds since the question (default 3600).")

    def handle(self, *args, **options):
        failed = turns_fail_stale(older_than_seconds=options["older_than"])
        self.stdout.write(json.dumps({"failed": failed}))
