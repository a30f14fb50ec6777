"""Celery tasks of the inventory context: take ids, call one service, nothing else."""

from celery import shared_task

from apps.inventory import services
from apps.inventory.models import IdempotencyKey
from shop.api import idempotency


@shared_task(name="inventory.expire_reservations", acks_late=True, ignore_result=True)
def expire_reservations() -> int:
    """Beat: release every reservation past its expiry, batch by batch."""
    total = 0
    while expired := services.reservations_expire_due():
        total += expired
        if expired < services.EXPIRY_BATCH:
            break
    return total


@shared_task(name="inventory.idempotency_prune", acks_late=True, ignore_result=True)
def idempotency_prune() -> int:
    """Forget adjustment keys past their TTL (they are reusable after that anyway)."""
    return idempotency.prune(IdempotencyKey, using="inventory")
