"""Scrape-time gauges of the checkout saga (one indexed query each, when Prometheus scrapes)."""

from django.db.models import Count
from django.utils import timezone

from apps.orders.saga.models import ACTIVE_STATUSES, CheckoutSaga, SagaStatus
from shop.observability.metrics import scrape_gauge

ALIAS = "orders"


@scrape_gauge("checkout_sagas_overdue", "Active sagas past their step deadline (recovery should pick them up)")
def _overdue():
    count = CheckoutSaga.objects.using(ALIAS).filter(status__in=ACTIVE_STATUSES, deadline__lt=timezone.now()).count()
    return [((), count)]


@scrape_gauge("checkout_sagas_active", "Sagas in progress, by status", ["status"])
def _active():
    counts = dict(
        CheckoutSaga.objects.using(ALIAS)
        .filter(status__in=ACTIVE_STATUSES)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return [((status,), counts.get(status, 0)) for status in (SagaStatus.STARTED, SagaStatus.COMPENSATING)]
