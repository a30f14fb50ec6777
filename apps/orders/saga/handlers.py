"""The saga's subscriptions: one reply (or trigger) event → one orchestrator entry point.

The saga starts inside ``order_place``'s transaction (``orchestrator.saga_begin``), not on a
delivery of ``order.created``.

Each runs inside the orders inbox transaction, so a redelivered reply is dropped before it
reaches the state machine, and a handled one commits together with the commands it sends.
"""

from apps.inventory import events as inventory
from apps.orders.events import ORDER_CANCEL_REQUESTED
from apps.orders.saga import orchestrator
from apps.payments import events as payments
from shop.events import Envelope, subscriber


def _order_id(envelope: Envelope):
    return envelope.data.get("orderId") or envelope.aggregate_id


@subscriber(inventory.STOCK_RESERVED, consumer="orders.saga.stock_reserved", context="orders")
def stock_reserved(envelope: Envelope) -> None:
    orchestrator.on_stock_reserved(order_id=_order_id(envelope))


@subscriber(inventory.STOCK_RESERVATION_FAILED, consumer="orders.saga.stock_reservation_failed", context="orders")
def stock_reservation_failed(envelope: Envelope) -> None:
    orchestrator.on_stock_reservation_failed(order_id=_order_id(envelope), shortages=envelope.data.get("shortages", []))


@subscriber(inventory.STOCK_RELEASED, consumer="orders.saga.stock_released", context="orders")
def stock_released(envelope: Envelope) -> None:
    orchestrator.on_stock_released(order_id=_order_id(envelope))


@subscriber(payments.AUTHORIZATION_SUCCEEDED, consumer="orders.saga.payment_authorized", context="orders")
def payment_authorized(envelope: Envelope) -> None:
    orchestrator.on_payment_authorized(order_id=_order_id(envelope), amount=envelope.data.get("amount"))


@subscriber(payments.AUTHORIZATION_FAILED, consumer="orders.saga.payment_authorization_failed", context="orders")
def payment_authorization_failed(envelope: Envelope) -> None:
    orchestrator.on_payment_authorization_failed(
        order_id=_order_id(envelope),
        declined=envelope.data["declined"],
        may_be_authorized=envelope.data["mayBeAuthorized"],
        detail=envelope.data.get("message", ""),
    )


@subscriber(payments.CAPTURE_SUCCEEDED, consumer="orders.saga.payment_captured", context="orders")
def payment_captured(envelope: Envelope) -> None:
    orchestrator.on_payment_captured(order_id=_order_id(envelope))


@subscriber(payments.CAPTURE_FAILED, consumer="orders.saga.payment_capture_failed", context="orders")
def payment_capture_failed(envelope: Envelope) -> None:
    orchestrator.on_payment_capture_failed(order_id=_order_id(envelope), detail=envelope.data.get("message", ""))


@subscriber(payments.REVERSED, consumer="orders.saga.payment_reversed", context="orders")
def payment_reversed(envelope: Envelope) -> None:
    orchestrator.on_payment_reversed(order_id=_order_id(envelope))


@subscriber(ORDER_CANCEL_REQUESTED, consumer="orders.saga.cancel_requested", context="orders")
def cancel_requested(envelope: Envelope) -> None:
    orchestrator.on_order_cancel_requested(order_id=_order_id(envelope))


@subscriber(inventory.STOCK_COMMIT_FAILED, consumer="orders.saga.stock_commit_failed", context="orders")
def stock_commit_failed(envelope: Envelope) -> None:
    orchestrator.on_stock_commit_failed(order_id=_order_id(envelope))
