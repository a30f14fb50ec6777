"""The public door of the inventory context: the only module other contexts may import."""

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from apps.inventory import selectors, services
from apps.inventory.errors import ExpiredReservationUnfillable, ReservationNotActive

__all__ = (
    "ExpiredReservationUnfillable",
    "ReservationNotActive",
    "ReservationOutcome",
    "ReservationView",
    "Shortage",
    "StockLine",
    "reservations_for_order",
    "stock_availability",
    "stock_commit",
    "stock_release",
    "stock_reserve",
    "stock_return_committed",
)


@dataclass(frozen=True)
class StockLine:
    product_id: uuid.UUID
    quantity: int


@dataclass(frozen=True)
class Shortage:
    product_id: uuid.UUID
    available: int
    requested: int


@dataclass(frozen=True)
class ReservationOutcome:
    order_id: uuid.UUID
    reserved: bool
    shortages: tuple[Shortage, ...]


@dataclass(frozen=True)
class ReservationView:
    product_id: uuid.UUID
    quantity: int
    status: str
    expires_at: datetime
    updated_at: datetime


def stock_availability(*, product_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Available = on hand − reserved, one query; unknown products → 0."""
    return selectors.availability_many(product_ids=product_ids)


def stock_reserve(*, order_id: uuid.UUID, items: Iterable[StockLine]) -> ReservationOutcome:
    """All-or-nothing across the lines (repeated products are summed); idempotent per order:
    a repeat returns the first outcome, whatever happened since. Raises ``ValueError`` for
    an empty order or a non-positive quantity."""
    quantities: Counter[uuid.UUID] = Counter()
    for line in items:
        if line.quantity <= 0:
            raise ValueError(f"quantity must be positive, got {line.quantity} for {line.product_id}")
        quantities[line.product_id] += line.quantity
    request = services.stock_reserve(order_id=order_id, quantities=dict(quantities))
    return ReservationOutcome(
        order_id=request.order_id,
        reserved=request.reserved,
        shortages=tuple(
            Shortage(product_id=uuid.UUID(s["productId"]), available=s["available"], requested=s["requested"])
            for s in request.shortages
        ),
    )


def stock_release(*, order_id: uuid.UUID) -> int:
    """The units released. Idempotent; 0 when nothing is reserved (never reserved, already
    released or committed)."""
    return services.stock_release(order_id=order_id)


def stock_commit(*, order_id: uuid.UUID) -> None:
    """Idempotent. An expired reservation is re-taken from available stock; raises
    ``ReservationNotActive`` when it was released, or ``ExpiredReservationUnfillable`` (a kind
    of it) when it expired and its units are gone: the caller must re-reserve or cancel rather
    than ship unreserved stock."""
    services.stock_commit(order_id=order_id)


def stock_return_committed(*, order_id: uuid.UUID) -> int:
    """The units put back on hand. Idempotent; returns a confirmed-but-unshipped order's
    committed units, 0 when there are none."""
    return services.stock_return_committed(order_id=order_id)


def reservations_for_order(*, order_id: uuid.UUID) -> list[ReservationView]:
    """The order's stock reservations, one per product, whatever their status (for staff pages)."""
    return [
        ReservationView(
            product_id=r.product_id,
            quantity=r.quantity,
            status=r.status,
            expires_at=r.expires_at,
            updated_at=r.updated_at,
        )
        for r in selectors.reservations_for_order(order_id=order_id)
    ]
