"""Reads of the payments context."""

import uuid

from apps.payments.models import Payment, PaymentEvent


def payments_for_order(*, order_id: uuid.UUID) -> list[Payment]:
    return list(Payment.objects.filter(order_id=order_id).order_by("created_at"))


def payment_get(*, payment_id: uuid.UUID) -> Payment | None:
    return Payment.objects.filter(pk=payment_id).first()


def payment_events_for_order(*, order_id: uuid.UUID) -> list[PaymentEvent]:
    return list(PaymentEvent.objects.filter(payment__order_id=order_id).order_by("created_at", "id"))
