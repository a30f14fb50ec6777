"""Inventory's part in the checkout saga: it obeys the saga's commands and answers with events.

Reservation and release are idempotent per order, so a command re-sent after a timeout
gets the same answer again; commit follows ``order.confirmed`` by choreography. Each step is
the inventory facade's function, the one door tests and other contexts use too.
"""

import uuid

import structlog

from apps.inventory import events
from apps.inventory import facade as inventory
from apps.orders.events import ORDER_CONFIRMED, STOCK_RELEASE_REQUESTED, STOCK_RESERVATION_REQUESTED
from shop.events import Envelope, publish, subscriber

ALIAS = "inventory"
logger = structlog.get_logger("inventory.checkout")


@subscriber(STOCK_RESERVATION_REQUESTED, consumer="inventory.checkout.reserve", context=ALIAS)
def reserve_for_checkout(envelope: Envelope) -> None:
    order_id = uuid.UUID(envelope.data["orderId"])
    outcome = inventory.stock_reserve(
        order_id=order_id,
        items=[inventory.StockLine(uuid.UUID(line["productId"]), line["quantity"]) for line in envelope.data["items"]],
    )
    if outcome.reserved:
        publish(events.STOCK_RESERVED, {"orderId": order_id}, aggregate_id=order_id, using=ALIAS)
    else:
        shortages = [
            {"productId": str(s.product_id), "available": s.available, "requested": s.requested}
            for s in outcome.shortages
        ]
        publish(
            events.STOCK_RESERVATION_FAILED,
            {"orderId": order_id, "shortages": shortages},
            aggregate_id=order_id,
            using=ALIAS,
        )


@subscriber(STOCK_RELEASE_REQUESTED, consumer="inventory.checkout.release", context=ALIAS)
def release_for_checkout(envelope: Envelope) -> None:
    """Undo whatever the order holds: a live reservation is released, committed units return."""
    order_id = uuid.UUID(envelope.data["orderId"])
    released = inventory.stock_release(order_id=order_id)
    returned = inventory.stock_return_committed(order_id=order_id)
    publish(
        events.STOCK_RELEASED,
        {"orderId": order_id, "releasedUnits": released, "returnedUnits": returned},
        aggregate_id=order_id,
        using=ALIAS,
    )


@subscriber(ORDER_CONFIRMED, consumer="inventory.checkout.commit", context=ALIAS)
def commit_on_confirmation(envelope: Envelope) -> None:
    order_id = uuid.UUID(envelope.data["orderId"])
    try:
        inventory.stock_commit(order_id=order_id)
    except inventory.ExpiredReservationUnfillable as exc:
        # Paid for but no longer on the shelf: tell the saga, which refunds and cancels.
        logger.error("commit_failed_expired_reservation_unfillable", order_id=str(order_id), detail=str(exc))
        publish(
            events.STOCK_COMMIT_FAILED,
            {"orderId": order_id, "reason": "RESERVATION_EXPIRED_AND_SOLD"},
            aggregate_id=order_id,
            using=ALIAS,
        )
    except inventory.ReservationNotActive:
        # The saga compensated (released) before this confirmation arrived; nothing to commit.
        logger.info("commit_skipped_reservation_not_active", order_id=str(order_id))
