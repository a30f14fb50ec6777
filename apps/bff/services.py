"""The product page in one call: catalog product + inventory availability + rating summary.

The product is essential (no product, no page); stock and rating are optional. Each
optional part runs behind its own circuit breaker: when its database fails, or its circuit
is open, the page is still served with that part ``None`` and named in ``degraded``, so one
sick context cannot take the product page down with it. Calls run one after another: each
is a single indexed query (or a cache hit), cheaper than threads with their own connections.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from django.db import DatabaseError

from apps.bff.errors import CatalogUnavailable
from apps.catalog import facade as catalog
from apps.inventory import facade as inventory
from shop.resilience.breaker import CircuitOpenError, guard

logger = structlog.get_logger("apps.bff")
T = TypeVar("T")

INVENTORY = "inventory"
REVIEWS = "reviews"
DEPENDENCY_ERRORS = (DatabaseError,)


@dataclass(frozen=True)
class ProductPage:
    product: catalog.ProductDetail
    available_quantity: int | None
    in_stock: bool | None
    rating: catalog.RatingSummary | None
    degraded: tuple[str, ...]


def breaker_name(dependency: str) -> str:
    return f"bff.{dependency}"


def _optional(dependency: str, read: Callable[[], T]) -> T | None:
    try:
        with guard(breaker_name(dependency), failures=DEPENDENCY_ERRORS):
            return read()
    except (CircuitOpenError, *DEPENDENCY_ERRORS) as exc:
        logger.warning("bff_degraded", dependency=dependency, error=f"{type(exc).__name__}: {exc}"[:200])
        return None


def product_page_get(*, product_id: uuid.UUID) -> ProductPage | None:
    """``None`` when there is no active product with this id."""
    try:
        product = catalog.product_detail_get(product_id=product_id)
    except DatabaseError as exc:
        raise CatalogUnavailable(str(exc)) from exc
    if product is None or not product.is_active:
        return None
    available = _optional(INVENTORY, lambda: inventory.stock_availability(product_ids=[product_id])[product_id])
    rating = _optional(REVIEWS, lambda: catalog.rating_summary_get(product_id=product_id))
    return ProductPage(
        product=product,
        available_quantity=available,
        in_stock=None if available is None else available > 0,
        rating=rating,
        degraded=tuple(name for name, part in ((INVENTORY, available), (REVIEWS, rating)) if part is None),
    )
