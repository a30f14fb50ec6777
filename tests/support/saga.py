"""Delivery controls for checkout tests: hold chosen messages back (lost or slow), expire
deadlines, and hand held messages over later — the real outbox, inbox and handlers throughout."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.orders.saga.models import CheckoutSaga
from shop.events import inbox, relay


def drain_holding(event_type: str) -> list[tuple[str, dict]]:
    """Deliver everything except ``event_type`` messages, which are returned instead."""
    held: list[tuple[str, dict]] = []

    def send(sub, wire):
        if wire["type"] == event_type:
            held.append((sub.consumer, wire))
        else:
            inbox.handle(sub.consumer, wire)

    for _ in range(50):
        if not sum(relay.dispatch(alias, send=send) for alias in settings.CONTEXTS):
            return held
    raise RuntimeError("did not settle")


def deliver(held: list[tuple[str, dict]]) -> None:
    """The held-back messages arrive at last."""
    for consumer, wire in held:
        inbox.handle(consumer, wire)


def expire_saga_deadlines(order_id=None) -> None:
    sagas = CheckoutSaga.objects.all() if order_id is None else CheckoutSaga.objects.filter(order_id=order_id)
    sagas.update(deadline=timezone.now() - timedelta(seconds=1))
