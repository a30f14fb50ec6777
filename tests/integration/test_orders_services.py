"""The order state machine as the saga drives it: idempotent commands, history and events."""

import pytest

from apps.orders import eventstore, services
from apps.orders.models import OrderStatus, OutboxMessage
from tests.conftest import CONTEXT_DBS
from tests.factories.orders import OrderFactory

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


def _events(order):
    """The order's events as recorded (the event store: every order event, subscribed or not)."""
    return list(eventstore.order_events(order_id=order.id).values_list("event_type", flat=True))


def _queued(order):
    """What the outbox holds for delivery: only events somebody subscribes to."""
    return list(OutboxMessage.objects.filter(aggregate_id=str(order.id)).values_list("event_type", flat=True))


def test_confirm_writes_history_and_events_once():
    order = OrderFactory()

    services.order_confirm(order_id=order.id)
    services.order_confirm(order_id=order.id)  # redelivered command: no-op

    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED and not order.processing
    assert [h.to_status for h in order.history.all()] == ["PENDING", "CONFIRMED"]
    assert sorted(_events(order)) == ["order.confirmed", "order.status_changed"]
    assert _queued(order) == ["order.confirmed"]  # inventory commits the stock; nobody takes status_changed


def test_cancel_is_idempotent_and_keeps_the_first_reason():
    order = OrderFactory()

    services.order_cancel(order_id=order.id, reason="PAYMENT_DECLINED")
    services.order_cancel(order_id=order.id, reason="SOMETHING_ELSE")

    order.refresh_from_db()
    assert order.cancellation_reason == "PAYMENT_DECLINED"
    cancelled = eventstore.order_events(order_id=order.id).get(event_type="order.cancelled")
    assert cancelled.data == {
        "orderId": str(order.id),
        "customerId": str(order.user_id),
        "reason": "PAYMENT_DECLINED",
        "previousStatus": "PENDING",
    }


@pytest.mark.parametrize(
    ("status", "command"),
    [
        (OrderStatus.CANCELLED, lambda o: services.order_confirm(order_id=o.id)),
        (OrderStatus.SHIPPED, lambda o: services.order_cancel(order_id=o.id, reason="X")),
        (OrderStatus.PENDING, lambda o: services.order_ship(order_id=o.id, tracking_number="T")),
        (OrderStatus.CONFIRMED, lambda o: services.order_deliver(order_id=o.id)),
        (OrderStatus.DELIVERED, lambda o: services.order_cancel_request(order_id=o.id)),
    ],
)
def test_invalid_transitions_are_refused_without_side_effects(status, command):
    order = OrderFactory(status=status)
    with pytest.raises(services.InvalidTransition):
        command(order)
    order.refresh_from_db()
    assert order.status == status and order.history.count() == 1 and not _events(order)


def test_the_payment_token_is_cleared_once_used():
    order = OrderFactory(payment_token="tok_visa")
    services.order_payment_token_clear(order_id=order.id)
    order.refresh_from_db()
    assert order.payment_token == ""
