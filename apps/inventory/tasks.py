"""Celery tasks of the inventory context: take ids, call one service, nothing else."""

from celery import shared_task

from apps.inventory import services


@shared_task(name="inventory.expire_reservations", acks_late=True, ignore_result=True)
def expire_reservations() -> int:
    """Beat: release every reservation past its expiry, batch by batch."""
    total = 0
    while expired := services.reservations_expire_due():
        total += expired
        if expired < services.EXPIRY_BATCH:
            break
    return total
