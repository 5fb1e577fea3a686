"""Delete long-expired refresh tokens and ended login sessions; prints a JSON report."""

import json

from django.core.management.base import BaseCommand

from accounts.services import tokens_purge


class Command(BaseCommand):
    help = "Delete refresh tokens and login sessions that ended more than --days ago."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30)

    def handle(self, *args, days: int, **options):
        self.stdout.write(json.dumps(tokens_purge(older_than_days=days)))
