"""Subscribers of the orders context to other contexts' events (idempotent through the inbox)."""

from apps.orders.saga import handlers as saga_handlers  # noqa: F401 - the checkout saga's subscriptions
