"""Reads of the orders context."""

import uuid
from datetime import datetime

from django.db.models import QuerySet

from apps.orders.models import Order

SORT_FIELDS = {"createdAt": "created_at", "total": "total", "status": "status"}


def order_get(*, order_id: uuid.UUID, user_id: uuid.UUID | None = None, with_history: bool = False) -> Order | None:
    """One order with its items; ``user_id`` limits it to that customer's orders (None: any order)."""
    orders = Order.objects.prefetch_related("items")
    if with_history:
        orders = orders.prefetch_related("history")
    if user_id is not None:
        orders = orders.filter(user_id=user_id)
    return orders.filter(pk=order_id).first()


def order_exists(*, order_id: uuid.UUID) -> bool:
    return Order.objects.filter(pk=order_id).exists()


def orders_list(
    *,
    user_id: uuid.UUID | None,
    status: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    customer_email: str | None = None,
    sort_by: str = "createdAt",
    descending: bool = True,
) -> QuerySet[Order]:
    """Orders with their items prefetched: one query for the page and one for all its items."""
    orders = Order.objects.prefetch_related("items")
    if user_id is not None:
        orders = orders.filter(user_id=user_id)
    if status:
        orders = orders.filter(status=status)
    if created_from:
        orders = orders.filter(created_at__gte=created_from)
    if created_to:
        orders = orders.filter(created_at__lt=created_to)
    if customer_email:
        orders = orders.filter(customer_email__iexact=customer_email)
    field = SORT_FIELDS[sort_by]
    prefix = "-" if descending else ""
    return orders.order_by(f"{prefix}{field}", f"{prefix}id")
