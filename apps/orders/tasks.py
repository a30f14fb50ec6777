"""Celery tasks of the orders context: thin, they call one function."""

from celery import shared_task

from apps.orders.models import IdempotencyRecord
from shop.api import idempotency


@shared_task(name="orders.idempotency_prune", acks_late=True, ignore_result=True)
def idempotency_prune() -> int:
    """Forget Idempotency-Key records past their TTL (they are reusable after that anyway)."""
    return idempotency.prune(IdempotencyRecord, using="orders")
