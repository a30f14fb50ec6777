"""The public door of the orders context: the only module other contexts may import."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from apps.orders.errors import OrderNotFound  # noqa: F401 - part of the facade
from apps.orders.models import Order
from shop.db import release_to_pool, select_object


@dataclass(frozen=True)
class OrderSummary:
    id: uuid.UUID
    user_id: uuid.UUID
    status: str
    currency: str
    total: Decimal


@dataclass(frozen=True)
class PaymentRequest:
    """What the payments context needs to authorize an order: read from the order itself, so the
    amount cannot differ from the order total, and the card token never travels in an event."""

    order_id: uuid.UUID
    amount: Decimal
    currency: str
    token: str  # "" once the checkout has used or abandoned it
    created_at: datetime


def order_payment_request_get(*, order_id: uuid.UUID) -> PaymentRequest | None:
    """Read by a payments delivery that then waits on the payment provider: the orders connection
    goes back to the pool at once, so a waiting delivery holds one connection (its own
    context's, in its transaction), not two, and more deliveries can wait at once."""
    order = select_object(Order, using="orders", only=("total", "currency", "payment_token", "created_at"), pk=order_id)
    release_to_pool("orders")
    if order is None:
        return None
    return PaymentRequest(
        order_id=order_id,
        amount=order.total,
        currency=order.currency,
        token=order.payment_token,
        created_at=order.created_at,
    )


def order_summary_get(*, order_id: uuid.UUID) -> OrderSummary | None:
    row = Order.objects.filter(pk=order_id).values("id", "user_id", "status", "currency", "total").first()
    return OrderSummary(**row) if row else None
