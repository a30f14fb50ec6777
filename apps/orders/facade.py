"""The public door of the orders context: the only module other contexts may import."""

import uuid
from dataclasses import dataclass
from decimal import Decimal

from apps.orders.errors import OrderNotFound  # noqa: F401 - part of the facade
from apps.orders.models import Order


@dataclass(frozen=True)
class OrderSummary:
    id: uuid.UUID
    user_id: uuid.UUID
    status: str
    currency: str
    total: Decimal


def order_summary_get(*, order_id: uuid.UUID) -> OrderSummary | None:
    row = Order.objects.filter(pk=order_id).values("id", "user_id", "status", "currency", "total").first()
    return OrderSummary(**row) if row else None
