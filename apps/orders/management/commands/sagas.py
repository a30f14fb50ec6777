"""``manage.py sagas recover`` (a recovery sweep on demand) and ``manage.py sagas status``."""

from django.core.management import BaseCommand
from django.db.models import Count

from apps.orders.saga import orchestrator
from apps.orders.saga.models import CheckoutSaga


class Command(BaseCommand):
    help = "Checkout sagas: `recover` sweeps overdue sagas now; `status` counts sagas by status and step."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["recover", "status"])

    def handle(self, *args, action, **options):
        if action == "recover":
            outcome = orchestrator.sagas_recover()
            self.stdout.write(f"recovered: {outcome or 'nothing overdue'}")
            return
        rows = CheckoutSaga.objects.values("status", "current_step").annotate(n=Count("id")).order_by("status")
        for row in rows:
            self.stdout.write(f"{row['status']:<13} {row['current_step']:<18} {row['n']}")
