"""Reads of the inventory context."""

import uuid
from collections.abc import Iterable

from apps.inventory.models import Reservation, StockItem
from shop.db import select_objects


def stock_get(*, product_id: uuid.UUID) -> StockItem | None:
    return StockItem.objects.filter(product_id=product_id).first()


def availability_many(*, product_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Available units per product in one query; products without a stock item have 0."""
    product_ids = list(product_ids)
    if not product_ids:
        return {}
    rows = select_objects(
        StockItem, using="inventory", only=("product_id", "on_hand", "reserved"), product_id__in=product_ids
    )
    found = {item.product_id: item.on_hand - item.reserved for item in rows}
    return {pid: found.get(pid, 0) for pid in product_ids}


def reservations_for_order(*, order_id: uuid.UUID) -> list[Reservation]:
    return list(Reservation.objects.filter(order_id=order_id).order_by("created_at", "product_id"))
