"""``createsuperuser`` that writes to the accounts database by default.

Django's command defaults to the ``default`` alias, which is a deliberate dummy here, so the
stock command cannot create anyone. With ``--noinput`` it reads DJANGO_SUPERUSER_EMAIL and
DJANGO_SUPERUSER_PASSWORD (and optionally DJANGO_SUPERUSER_NAME).
"""

from django.contrib.auth.management.commands import createsuperuser


class Command(createsuperuser.Command):
    # The stock check inspects the "default" alias (a dummy: the check is a no-op in production).
    requires_migrations_checks = False

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database="accounts")
