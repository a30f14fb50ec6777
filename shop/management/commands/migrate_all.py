"""Migrate every context database (idempotent: already-applied migrations are skipped)."""

from django.conf import settings
from django.core.management import BaseCommand, call_command


class Command(BaseCommand):
    help = "Run migrate on every context database alias."

    def handle(self, *args, **options):
        for alias in settings.CONTEXTS:
            self.stdout.write(f"Migrating {alias}…")
            call_command("migrate", database=alias, interactive=False, verbosity=max(0, options["verbosity"] - 1))
        self.stdout.write(self.style.SUCCESS("All context databases are up to date."))
