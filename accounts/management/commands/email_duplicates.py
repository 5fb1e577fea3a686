import json

from django.core.management.base import BaseCommand, CommandError

from accounts.email_duplicates import email_duplicates
from accounts.models import User


class Command(BaseCommand):
    help = ("Report email addresses held by more than one account (case-insensitive). Exit status 1 when any "
            "exist; resolve them (change or clear the email in the admin) before migrating: nothing is merged.")

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print {address: [usernames]} as JSON.")

    def handle(self, *args, **options):
        found = email_duplicates(User)
        if options["json"]:
            self.stdout.write(json.dumps(found, indent=2))
        else:
            for address, usernames in found.items():
                self.stdout.write(f"{address}: {', '.join(usernames)}")
            self.stdout.write(f"{len(found)} duplicated address(es).")
        if found:
            raise CommandError(f"{len(found)} email address(es) are held by more than one account.",
                               returncode=1)
