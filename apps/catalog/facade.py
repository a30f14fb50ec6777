"""The public door of the catalog context: the only module other contexts may import.

Snapshots come from the database (an order must price from the truth); ``product_detail_get``
is the cached read for display (the BFF and the product page share its cache entry).
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from apps.catalog import caching, selectors


@dataclass(frozen=True)
class ProductSnapshot:
    id: uuid.UUID
    sku: str
    name: str
    price: Decimal
    currency: str
    is_active: bool


@dataclass(frozen=True)
class CategoryRef:
    id: uuid.UUID
    name: str
    slug: str


@dataclass(frozen=True)
class ProductDetail:
    id: uuid.UUID
    sku: str
    name: str
    description: str
    price: Decimal
    currency: str
    is_active: bool
    category: CategoryRef | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RatingSummary:
    average: Decimal | None
    count: int


def _detail(product) -> ProductDetail:
    category = product.category
    return ProductDetail(
        id=product.id,
        sku=product.sku,
        name=product.name,
        description=product.description,
        price=product.price,
        currency=product.currency,
        is_active=product.is_active,
        category=CategoryRef(id=category.id, name=category.name, slug=category.slug) if category else None,
        created_at=product.created_at,
        updated_at=product.updated_at,
    )


def product_get(*, product_id: uuid.UUID) -> ProductSnapshot | None:
    return product_snapshots_get(product_ids=[product_id]).get(product_id)


def product_snapshots_get(*, product_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ProductSnapshot]:
    """One query; unknown ids are absent, inactive products are included (is_active=False)."""
    return {row["id"]: ProductSnapshot(**row) for row in selectors.product_snapshot_rows(product_ids=product_ids)}


def _detail_to_cache(detail: ProductDetail) -> dict:
    """The cache holds JSON only (no pickle), so the detail travels as plain strings."""
    category = detail.category
    return {
        "id": str(detail.id),
        "sku": detail.sku,
        "name": detail.name,
        "description": detail.description,
        "price": str(detail.price),
        "currency": detail.currency,
        "is_active": detail.is_active,
        "category": {"id": str(category.id), "name": category.name, "slug": category.slug} if category else None,
        "created_at": detail.created_at.isoformat(),
        "updated_at": detail.updated_at.isoformat(),
    }


def _detail_from_cache(data: dict) -> ProductDetail:
    category = data["category"]
    return ProductDetail(
        id=uuid.UUID(data["id"]),
        sku=data["sku"],
        name=data["name"],
        description=data["description"],
        price=Decimal(data["price"]),
        currency=data["currency"],
        is_active=data["is_active"],
        category=CategoryRef(id=uuid.UUID(category["id"]), name=category["name"], slug=category["slug"])
        if category
        else None,
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
    )


def product_detail_get(*, product_id: uuid.UUID) -> ProductDetail | None:
    """Cached (cache-aside, invalidated by product events); inactive products included."""

    def build() -> dict | None:
        product = selectors.product_get(product_id=product_id)
        return _detail_to_cache(_detail(product)) if product else None

    cached = caching.product_detail(product_id, build)
    return _detail_from_cache(cached) if cached is not None else None


def rating_summary_get(*, product_id: uuid.UUID) -> RatingSummary:
    average, count = selectors.rating_summary(product_id=product_id)
    return RatingSummary(average=average, count=count)


def product_ids_list(*, active_only: bool = True) -> list[uuid.UUID]:
    """Every product id (ordered); for bulk jobs such as demo stock seeding."""
    return selectors.product_ids(active_only=active_only)


def product_ids_search(*, text: str, limit: int = 500) -> list[uuid.UUID]:
    """Products whose SKU is ``text`` or whose name contains it, at most ``limit``; for staff search."""
    return selectors.product_ids_matching(text=text, limit=limit)
