"""Subscribers of the inventory context to other contexts' events (idempotent through the inbox)."""

import uuid

from apps.catalog.events import PRODUCT_CREATED
from apps.inventory import services
from shop.events import Envelope, subscriber


@subscriber(PRODUCT_CREATED, consumer="inventory.create_stock_item", context="inventory")
def create_stock_item(envelope: Envelope) -> None:
    """The catalog never writes inventory rows; inventory opens its own stock item, empty."""
    services.stock_item_ensure(product_ids=[uuid.UUID(envelope.data["productId"])])


from apps.inventory import checkout  # noqa: E402, F401 - the checkout saga's commands
