"""``changepassword`` on the accounts database by default (``default`` is a dummy alias)."""

from django.contrib.auth.management.commands import changepassword


class Command(changepassword.Command):
    # The stock check inspects the "default" alias (a dummy: the check is a no-op in production).
    requires_migrations_checks = False

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database="accounts")
