"""Subscribers of the catalog context to events (idempotent through the inbox).

The catalog listens to its own product events to drop cached copies: the same reaction any
other context holding a copy would have. ``strict=True`` makes an unreachable Redis fail the
delivery, so it is retried (and finally dead-lettered for replay) instead of leaving a
24-hour stale entry behind.
"""

import uuid

from apps.catalog import caching
from apps.catalog.events import PRODUCT_CREATED, PRODUCT_UPDATED
from shop.events import Envelope, subscriber


@subscriber(PRODUCT_UPDATED, consumer="catalog.invalidate_cache_on_update", context="catalog")
def invalidate_cache_on_update(envelope: Envelope) -> None:
    product_id = uuid.UUID(envelope.data["productId"])
    caching.invalidate_product(product_id, strict=True)
    caching.invalidate_product_later(product_id)


@subscriber(PRODUCT_CREATED, consumer="catalog.invalidate_cache_on_create", context="catalog")
def invalidate_cache_on_create(envelope: Envelope) -> None:
    caching.invalidate_product(uuid.UUID(envelope.data["productId"]), strict=True)
