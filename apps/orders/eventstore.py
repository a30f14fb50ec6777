"""The order event store: every order event, appended in the transaction of the change, kept forever.

The outbox is a delivery queue (pruned after its retention); this table is the history.
The ``Order`` row stays the source of truth for queries: it is indexed, joined and paged,
while folding events for every read would not be. The store answers what the row cannot:
how the order got here (audit), and what it looked like at any moment (``order_replay``).

Replay guarantee: folding an order's events, in ``sequence`` order, yields the status,
currency, total, items, cancellation reason and tracking number of the order row as of
the last folded event, because every order change writes its row and its events in one
transaction (``services._record``). Old event versions are upcast first, so the reducers
only ever see the newest shape.
"""

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from apps.orders import events
from apps.orders.errors import NothingToReplay
from apps.orders.models import OrderEventRecord, OrderStatus
from shop.db import insert_rows, select_object
from shop.events.envelope import Envelope
from shop.events.registry import upcast

ALIAS = "orders"
SEQUENCE_KEY = "orders_event_sequence"


class StaleSequence(Exception):
    """Another writer appended to this order's stream first: the caller decided on stale state."""

    def __init__(self, order_id, sequence: int):
        super().__init__(f"Order {order_id}: event #{sequence} was already appended by another writer")
        self.order_id = order_id
        self.sequence = sequence


class ReplayError(RuntimeError):
    """The stream cannot be folded: a code or data bug, never a client error."""


# --- append ------------------------------------------------------------------------------------


def last_sequence(*, order_id: uuid.UUID) -> int:
    """The stream's last sequence (0 for none): the unique key's index read backwards, one row,
    through a statement built once (the hot path's order confirmation asks for it)."""
    last = select_object(
        OrderEventRecord, using=ALIAS, only=("sequence",), order_by=("-sequence",), aggregate_id=order_id
    )
    return last.sequence if last is not None else 0


def append(*envelopes: Envelope, expected_sequence: int | None = None) -> int:
    """Store ``envelopes`` (one order's) as events ``expected_sequence + 1``, ``+ 2``, ... of
    their order, in one statement in the caller's transaction, and return the last sequence.

    ``expected_sequence`` is the last sequence the caller has seen (None: read it now). If
    another transaction appended one of those numbers first, the unique key refuses the insert
    and ``StaleSequence`` is raised; the caller's transaction is then unusable and rolls back
    whole, order change included, so the command can be retried from fresh state.
    """
    if not transaction.get_connection(ALIAS).in_atomic_block:
        raise RuntimeError(f"append() must run inside transaction.atomic(using={ALIAS!r})")
    order_id = uuid.UUID(envelopes[0].aggregate_id)
    if expected_sequence is None:
        expected_sequence = last_sequence(order_id=order_id)
    rows = [
        {
            "aggregate_id": order_id,
            "sequence": expected_sequence + position,
            "event_id": envelope.id,
            "event_type": envelope.type,
            "version": envelope.version,
            "data": envelope.data,
            "occurred_at": datetime.fromisoformat(envelope.occurred_at),
            "correlation_id": envelope.correlation_id or "",
            "causation_id": envelope.causation_id or "",
        }
        for position, envelope in enumerate(envelopes, start=1)
    ]
    try:
        # Inserts, as the model's append-only save() allows; now, since the key's refusal is the answer.
        insert_rows(OrderEventRecord, using=ALIAS, rows=rows, now=True)
    except IntegrityError as exc:
        if _violates_sequence_key(exc):
            raise StaleSequence(order_id, expected_sequence + 1) from exc
        raise
    return expected_sequence + len(rows)


def _violates_sequence_key(exc: IntegrityError) -> bool:
    diag = getattr(exc.__cause__, "diag", None)  # PostgreSQL names the constraint
    if diag is not None:
        return diag.constraint_name == SEQUENCE_KEY
    return "sequence" in str(exc)  # SQLite only says which columns


# --- read --------------------------------------------------------------------------------------


def order_events(*, order_id: uuid.UUID) -> QuerySet[OrderEventRecord]:
    """An order's events in the order they happened (served by the unique key's index)."""
    return OrderEventRecord.objects.filter(aggregate_id=order_id).order_by("sequence")


def order_has_events(*, order_id: uuid.UUID) -> bool:
    return OrderEventRecord.objects.filter(aggregate_id=order_id).exists()


# --- replay ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotItem:
    product_id: uuid.UUID
    quantity: int
    unit_price: Decimal | None  # None only for an order.created v1 event, which had no prices


@dataclass(frozen=True)
class OrderSnapshot:
    id: uuid.UUID
    status: str
    currency: str | None
    total: Decimal | None
    items: tuple[SnapshotItem, ...]
    cancellation_reason: str = ""
    tracking_number: str = ""
    version: int = 0  # the sequence of the last folded event
    as_of: datetime | None = None  # when the last folded change started


def _decimal(value) -> Decimal | None:
    return None if value is None else Decimal(value)


def _created(_: OrderSnapshot | None, data: dict) -> OrderSnapshot:
    return OrderSnapshot(
        id=uuid.UUID(data["orderId"]),
        status=OrderStatus.PENDING,
        currency=data["currency"],
        total=_decimal(data["total"]),
        items=tuple(
            SnapshotItem(uuid.UUID(item["productId"]), item["quantity"], _decimal(item["price"]))
            for item in data["items"]
        ),
    )


def _becomes(status: str, **fields_from_data: str) -> Callable[[OrderSnapshot, dict], OrderSnapshot]:
    """A reducer that sets ``status`` and copies ``{field: data key}`` from the event."""

    def reduce(order: OrderSnapshot, data: dict) -> OrderSnapshot:
        return replace(order, status=status, **{field: data.get(key, "") for field, key in fields_from_data.items()})

    return reduce


def _status_changed(order: OrderSnapshot, data: dict) -> OrderSnapshot:
    return replace(order, status=data["to"])


def _unchanged(order: OrderSnapshot, data: dict) -> OrderSnapshot:
    return order


# A change of the order (one service call, one transaction) starts with one of these; the
# specific events that complete it (order.confirmed, order.cancelled with its reason, ...)
# follow it in the same commit. Time travel cuts only before a change, never inside one.
CHANGE_STARTS = frozenset({events.ORDER_CREATED, events.ORDER_STATUS_CHANGED})

# Event type -> pure function (state, upcast data) -> new state: the spec's replayEvents switch.
REDUCERS: dict[str, Callable[[OrderSnapshot | None, dict], OrderSnapshot]] = {
    events.ORDER_CREATED: _created,
    events.ORDER_STATUS_CHANGED: _status_changed,
    events.ORDER_CONFIRMED: _becomes(OrderStatus.CONFIRMED),
    events.ORDER_CANCELLED: _becomes(OrderStatus.CANCELLED, cancellation_reason="reason"),
    # The request itself changes nothing: order.cancelled, in the same commit, does.
    events.ORDER_CANCEL_REQUESTED: _unchanged,
    events.ORDER_SHIPPED: _becomes(OrderStatus.SHIPPED, tracking_number="trackingNumber"),
    events.ORDER_DELIVERED: _becomes(OrderStatus.DELIVERED),
}


def fold(records: Iterable[OrderEventRecord]) -> OrderSnapshot | None:
    """Fold stored events (in sequence order) into a snapshot; None for no events."""
    order = None
    for record in records:
        envelope = upcast(
            Envelope(
                type=record.event_type,
                version=record.version,
                aggregate_id=str(record.aggregate_id),
                data=record.data,
                id=str(record.event_id),
            )
        )
        reducer = REDUCERS.get(envelope.type)
        if reducer is None:
            raise ReplayError(f"No reducer for {envelope.type}; add one to eventstore.REDUCERS")
        if order is None and envelope.type != events.ORDER_CREATED:
            raise ReplayError(f"Order {record.aggregate_id}: stream starts with {envelope.type}, not order.created")
        as_of = record.occurred_at if record.event_type in CHANGE_STARTS else order.as_of
        order = replace(reducer(order, envelope.data), version=record.sequence, as_of=as_of)
    return order


def order_replay(*, order_id: uuid.UUID, until: datetime | None = None) -> OrderSnapshot:
    """The order rebuilt from its events alone, as of ``until`` (default: now).

    Time travel folds every change that had started at or before ``until`` (see
    ``CHANGE_STARTS``), whole, and nothing after the first change that started later: the
    result is always a state the order row really had, and an event stamped by a clock that
    lags (another host) never sneaks in ahead of its predecessors.
    """
    records = order_events(order_id=order_id)
    if until is not None:
        records = _prefix_until(records, until)
    order = fold(records)
    if order is None:
        raise NothingToReplay(order_id, until)
    return order


def _prefix_until(records: Iterable[OrderEventRecord], until: datetime) -> Iterable[OrderEventRecord]:
    for record in records:
        if record.event_type in CHANGE_STARTS and record.occurred_at > until:
            return
        yield record
