"""Writes of the orders context: each function is one use case in one transaction on its alias.

The order life cycle lives in ``TRANSITIONS`` and nowhere else:

    PENDING -> CONFIRMED -> SHIPPED -> DELIVERED
    PENDING | CONFIRMED -> CANCELLED

Every transition writes a history row and publishes ``order.status_changed`` plus the
specific event (``order.confirmed``, ``order.cancelled``, ...) in the same transaction;
``_record`` also appends each order event to the event store (``eventstore.py``), where
``order.status_changed`` marks the start of a change, so it is always recorded first. The
saga's commands (``order_confirm``, ``order_cancel``) are idempotent because messages are
redelivered; the API's commands (cancel request, ship, deliver) are strict, so a client
learns that its request no longer applies (409 ``INVALID_STATE``).
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from apps.catalog import facade as catalog
from apps.inventory import facade as inventory
from apps.orders import events, eventstore, locks
from apps.orders.errors import (
    CheckoutBusy,
    ConcurrentChange,
    InsufficientStock,
    InvalidTransition,
    MixedCurrencies,
    OrderError,
    OrderNotFound,
    ProductsUnavailable,
    Shortage,
)
from apps.orders.models import Order, OrderItem, OrderStatus, OrderStatusHistory, ShippingMethod
from apps.orders.saga import orchestrator
from apps.orders.saga.models import SagaStatus
from apps.payments import facade as payments
from shop import cache
from shop.db import insert_objects, insert_row, update_object
from shop.events import gauges, publish
from shop.observability import metrics

ALIAS = "orders"

TRANSITIONS: dict[str, frozenset[str]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}
_EVENT_FOR_STATUS = {
    OrderStatus.CONFIRMED: events.ORDER_CONFIRMED,
    OrderStatus.CANCELLED: events.ORDER_CANCELLED,
    OrderStatus.SHIPPED: events.ORDER_SHIPPED,
    OrderStatus.DELIVERED: events.ORDER_DELIVERED,
}

# Flat rates per shipping method, in the order's currency.
SHIPPING_RATES = {
    ShippingMethod.STANDARD: Decimal("5.00"),
    ShippingMethod.EXPRESS: Decimal("15.00"),
    ShippingMethod.OVERNIGHT: Decimal("30.00"),
}
CUSTOMER_REQUEST = "CUSTOMER_REQUEST"
STAFF_REQUEST = "STAFF_REQUEST"


@dataclass(frozen=True)
class ItemRequest:
    product_id: uuid.UUID
    quantity: int


@dataclass(frozen=True)
class Address:
    street: str
    city: str
    state: str
    zip_code: str
    country: str


def _record(*published: tuple[str, dict], order_id: uuid.UUID, after: int | None = None) -> int:
    """Publish order events, ``(type, data)`` each, and append them to the event store (one
    statement for all of them), in the caller's transaction.

    Every order event goes through here, so the store can never miss one that was published.
    ``after``: the stream's last sequence when the caller knows it (a new order: 0), which saves
    reading it. Returns the new last one.
    """
    envelopes = [publish(event_type, data, aggregate_id=order_id, using=ALIAS) for event_type, data in published]
    try:
        return eventstore.append(*envelopes, expected_sequence=after)
    except eventstore.StaleSequence as exc:
        raise ConcurrentChange(str(exc)) from exc


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


def order_place(
    *,
    user_id: uuid.UUID,
    items: Sequence[ItemRequest],
    shipping_address: Address,
    shipping_method: str,
    payment_token: str,
    payment_method: str = "card",
    notes: str = "",
    customer_email: str = "",
) -> Order:
    """Create a PENDING order with price snapshots, and its checkout saga in the same transaction.

    Steps: the products (active, one currency), an advisory stock check, the priced lines;
    then, in one transaction, the order rows, the saga (which sends its first command) and
    ``order.created``. Refused with ``CheckoutBusy`` while more than
    ``CHECKOUT_MAX_WAITING_MESSAGES`` wait for a worker, before anything is read or written."""
    _checkout_admit()
    snapshots, currency = _products_get(items)
    _stock_check(items)
    lines = _lines_price(items, snapshots)
    shipping_cost = SHIPPING_RATES[ShippingMethod(shipping_method)]
    # savepoint=False: nested in the Idempotency-Key transaction, a failure here fails the request whole.
    with metrics.order_placement_seconds.time(), transaction.atomic(using=ALIAS, savepoint=False):
        order, created = _order_write(
            user_id=user_id,
            customer_email=customer_email,
            currency=currency,
            lines=lines,
            shipping_address=shipping_address,
            shipping_cost=shipping_cost,
            shipping_method=shipping_method,
            notes=notes,
            payment_method=payment_method,
            payment_token=payment_token,
        )
        orchestrator.saga_begin(order=order, lines=lines)
        _record((events.ORDER_CREATED, _created_event(order, lines)), order_id=order.id, after=0)
    metrics.orders_created.labels(OrderStatus.PENDING).inc()
    # What the caller shows is what was just written: no need to read the order back.
    order._prefetched_objects_cache = {"items": lines, "history": [created]}
    return order


def _products_get(items: Sequence[ItemRequest]) -> tuple[dict, str]:
    """The catalog's snapshots of the ordered products, all active and in one currency."""
    product_ids = [item.product_id for item in items]
    if not items or len(set(product_ids)) != len(product_ids):
        raise ValueError("items must be non-empty with one line per product")
    snapshots = catalog.product_snapshots_get(product_ids=product_ids)
    unavailable = [pid for pid in product_ids if pid not in snapshots or not snapshots[pid].is_active]
    if unavailable:
        raise ProductsUnavailable(unavailable)
    currencies = {snapshots[pid].currency for pid in product_ids}
    if len(currencies) != 1:
        raise MixedCurrencies("All products of one order must share a currency")
    return snapshots, currencies.pop()


def _checkout_admit() -> None:
    """Admission control (``CheckoutBusy``), on the messages waiting for a worker, as this
    process counted them at most ``CHECKOUT_BACKLOG_CHECK_SECONDS`` ago. Waiting messages are
    work queued for the CPU; sagas waiting on a deadline (a provider outage) are not, and do
    not close the door. ``CHECKOUT_MAX_WAITING_MESSAGES`` 0 turns it off."""
    limit = settings.CHECKOUT_MAX_WAITING_MESSAGES
    if not limit:
        return
    waiting = cache.remembered(
        "orders:messages_waiting", gauges.messages_waiting, seconds=settings.CHECKOUT_BACKLOG_CHECK_SECONDS
    )
    if waiting >= limit:
        raise CheckoutBusy(waiting, limit)


def _stock_check(items: Sequence[ItemRequest]) -> None:
    """A fast, advisory check: the saga's reservation is what really holds the stock."""
    available = inventory.stock_availability(product_ids=[item.product_id for item in items])
    shortages = [
        Shortage(item.product_id, available.get(item.product_id, 0), item.quantity)
        for item in items
        if available.get(item.product_id, 0) < item.quantity
    ]
    if shortages:
        raise InsufficientStock(shortages)


def _lines_price(items: Sequence[ItemRequest], snapshots: dict) -> list[OrderItem]:
    """The order's lines (not saved yet), each with the product's name, SKU and price as they are now."""
    return [
        OrderItem(
            product_id=item.product_id,
            product_name=snapshots[item.product_id].name,
            sku=snapshots[item.product_id].sku,
            unit_price=_money(snapshots[item.product_id].price),
            quantity=item.quantity,
            line_total=_money(snapshots[item.product_id].price * item.quantity),
        )
        for item in items
    ]


def _order_write(
    *, lines: list[OrderItem], shipping_address: Address, shipping_cost: Decimal, **fields
) -> tuple[Order, OrderStatusHistory]:
    """Insert the order (``fields``: its other columns as given), its lines and its first
    history row, in the caller's transaction."""
    subtotal = sum((line.line_total for line in lines), Decimal("0.00"))
    order = Order(
        subtotal=subtotal,
        shipping_cost=shipping_cost,
        total=subtotal + shipping_cost,
        shipping_street=shipping_address.street,
        shipping_city=shipping_address.city,
        shipping_state=shipping_address.state,
        shipping_zip_code=shipping_address.zip_code,
        shipping_country=shipping_address.country,
        **fields,
    )
    insert_objects([order], using=ALIAS)
    for line in lines:
        line.order = order
    insert_objects(lines, using=ALIAS)
    created = OrderStatusHistory(order=order, to_status=OrderStatus.PENDING, note="Order created")
    insert_objects([created], using=ALIAS)
    return order, created


def _created_event(order: Order, lines: list[OrderItem]) -> dict:
    return {
        "orderId": order.id,
        "customerId": order.user_id,
        "currency": order.currency,
        "total": order.total,
        "paymentMethod": order.payment_method,
        "items": [{"productId": li.product_id, "quantity": li.quantity, "price": li.unit_price} for li in lines],
    }


def _transition(
    *,
    order_id: uuid.UUID,
    target: str,
    note: str,
    idempotent: bool,
    changes: dict | None = None,
    event_data=None,
    locked: Order | None = None,
) -> tuple[Order, str | None]:
    """Move one order to ``target`` under a row lock; returns (order, previous status or None if no-op).
    ``locked``: the order, when the caller already holds its row lock (``locks.order_lock``)."""
    changes = changes or {}
    # savepoint=False: no savepoint round trips. A refusal is decided under the lock but raised
    # after the block has exited normally, so a caller's transaction stays usable; any other
    # failure ends the caller's transaction whole (saga deliveries are retried whole).
    refusal: OrderError | None = None
    previous = None
    with transaction.atomic(using=ALIAS, savepoint=False):
        order = locked or locks.order_lock(order_id)
        if order is None:
            refusal = OrderNotFound(str(order_id))
        elif idempotent and order.status == target:
            return order, None
        elif target not in TRANSITIONS[order.status]:
            refusal = InvalidTransition(order, target)
        else:
            previous = order.status
            _apply(order, previous=previous, target=target, note=note, changes=changes, event_data=event_data)
    if refusal is not None:
        raise refusal
    return order, previous


def _apply(order: Order, *, previous: str, target: str, note: str, changes: dict, event_data) -> None:
    order.status = target
    for field, value in changes.items():
        setattr(order, field, value)
    update_object(order, ["status", "updated_at", *changes], using=ALIAS)
    insert_row(OrderStatusHistory, using=ALIAS, order=order, from_status=previous, to_status=target, note=note)
    ids = {"orderId": order.id, "customerId": order.user_id}
    specific = {**ids, **(event_data or {})}
    if target == OrderStatus.CANCELLED:
        specific["previousStatus"] = previous
    _record(
        (events.ORDER_STATUS_CHANGED, {**ids, "from": previous, "to": target, "note": note}),
        (_EVENT_FOR_STATUS[target], specific),
        order_id=order.id,
    )


def order_confirm(
    *, order_id: uuid.UUID, note: str = "Stock reserved and payment authorized", locked: Order | None = None
) -> Order:
    """Saga command; confirming a CONFIRMED order is a no-op. The card token was used: it goes.
    ``locked``: the order, when the caller (the saga) already holds its row lock."""
    order, _ = _transition(
        order_id=order_id,
        target=OrderStatus.CONFIRMED,
        note=note,
        idempotent=True,
        changes={"payment_token": ""},
        locked=locked,
    )
    return order


def order_cancel(*, order_id: uuid.UUID, reason: str, note: str = "") -> Order:
    """Saga command, the end of an unwound checkout; cancelling a CANCELLED order is a no-op (the
    first reason stays). Either way the card token goes: a customer's cancel left it for the
    saga's reversal (``order_cancel_request``)."""
    order, previous = _transition(
        order_id=order_id,
        target=OrderStatus.CANCELLED,
        note=note or f"Cancelled: {reason}",
        idempotent=True,
        changes={"cancellation_reason": reason, "payment_token": ""},
        event_data={"reason": reason},
    )
    if previous is None and order.payment_token:
        order.payment_token = ""
        update_object(order, ["payment_token"], using=ALIAS)
    return order


def order_cancel_request(*, order_id: uuid.UUID, reason: str = CUSTOMER_REQUEST) -> Order:
    """API command: cancel now and ask the saga (``order.cancel_requested``) to compensate.

    The card token stays until the saga has unwound (``order_cancel`` erases it): an authorization
    may be at the provider right now, and if its answer is lost, the reversal asks the provider
    again with the checkout's key and arguments, the token among them, to learn what to void."""
    with transaction.atomic(using=ALIAS):
        order, previous = _transition(
            order_id=order_id,
            target=OrderStatus.CANCELLED,
            note=f"Cancelled: {reason}",
            idempotent=False,
            changes={"cancellation_reason": reason},
            event_data={"reason": reason},
        )
        _record(
            (
                events.ORDER_CANCEL_REQUESTED,
                {"orderId": order.id, "customerId": order.user_id, "reason": reason, "previousStatus": previous},
            ),
            order_id=order.id,
        )
    return order


def order_ship(*, order_id: uuid.UUID, tracking_number: str) -> Order:
    """Only once the checkout has captured the payment: an order is CONFIRMED on authorization,
    and a capture that fails afterwards unwinds the order (void, stock back, cancel), which a
    shipped order cannot be. The saga row is locked first (``locks``: saga, then order).

    Nor once any of its money was refunded: goods leave only for an order that is still paid
    (a refund after shipping is a return, which is fine; shipping after a refund is free goods)."""
    if any(payment.refunded_amount > 0 for payment in payments.payments_for_order(order_id=order_id)):
        order = Order.objects.filter(pk=order_id).first()
        if order is not None:
            raise InvalidTransition(order, OrderStatus.SHIPPED, " after its payment was refunded")
    with transaction.atomic(using=ALIAS):
        saga = locks.saga_lock(order_id)
        if saga is not None and saga.status != SagaStatus.COMPLETED:
            order = Order.objects.filter(pk=order_id).first()
            if order is not None:
                raise InvalidTransition(order, OrderStatus.SHIPPED, " before its payment is captured")
        order, _ = _transition(
            order_id=order_id,
            target=OrderStatus.SHIPPED,
            note=f"Shipped, tracking number {tracking_number}",
            idempotent=False,
            changes={"tracking_number": tracking_number},
            event_data={"trackingNumber": tracking_number},
        )
    return order


def order_deliver(*, order_id: uuid.UUID) -> Order:
    order, _ = _transition(order_id=order_id, target=OrderStatus.DELIVERED, note="Delivered", idempotent=False)
    return order


def order_payment_token_clear(*, order_id: uuid.UUID) -> None:
    """The saga calls this once the token was used: a one-time secret should not linger."""
    with transaction.atomic(using=ALIAS):
        Order.objects.filter(pk=order_id).update(payment_token="")
