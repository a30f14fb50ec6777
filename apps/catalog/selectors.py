"""Reads of the catalog context."""

import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Avg, Count, Q, QuerySet

from apps.catalog.models import Category, Product, Review
from shop.db import select_objects

SORT_FIELDS = {"createdAt": "created_at", "price": "price", "name": "name"}


@dataclass(frozen=True)
class ProductFilters:
    category: str | None = None  # a category id or slug; its subcategories are included
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    search: str | None = None
    active: bool | None = True  # None: both active and inactive (staff only)
    sort_by: str = "createdAt"
    order: str = "desc"


def _category_and_descendants(reference: str) -> list[uuid.UUID]:
    """One query for the whole (small) category table, then a walk down from ``reference``."""
    rows = list(Category.objects.order_by().values_list("id", "parent_id", "slug"))
    root = next((cid for cid, _, slug in rows if str(cid) == reference or slug == reference), None)
    if root is None:
        return []
    children: dict[uuid.UUID, list[uuid.UUID]] = {}
    for cid, parent_id, _ in rows:
        children.setdefault(parent_id, []).append(cid)
    found, frontier, seen = [root], [root], {root}
    while frontier:  # a cycle stored before saves refused one (category_save) ends the walk too
        frontier = [child for parent in frontier for child in children.get(parent, ()) if child not in seen]
        seen.update(frontier)
        found.extend(frontier)
    return found


def category_lineage(*, category_id: uuid.UUID) -> list[uuid.UUID]:
    """``category_id`` and its ancestors, nearest first (one query: the table is small)."""
    parents = dict(Category.objects.order_by().values_list("id", "parent_id"))
    lineage, current = [], category_id
    while current is not None and current not in lineage:
        lineage.append(current)
        current = parents.get(current)
    return lineage


def product_list(*, filters: ProductFilters) -> QuerySet[Product]:
    qs = Product.objects.select_related("category")
    if filters.active is not None:
        qs = qs.filter(is_active=filters.active)
    if filters.category:
        qs = qs.filter(category_id__in=_category_and_descendants(filters.category))
    if filters.min_price is not None:
        qs = qs.filter(price__gte=filters.min_price)
    if filters.max_price is not None:
        qs = qs.filter(price__lte=filters.max_price)
    if filters.search:
        term = filters.search
        qs = qs.filter(Q(name__icontains=term) | Q(sku__icontains=term) | Q(description__icontains=term))
    column = SORT_FIELDS[filters.sort_by]
    prefix = "-" if filters.order == "desc" else ""
    return qs.order_by(f"{prefix}{column}", f"{prefix}id")


def product_get(*, product_id: uuid.UUID) -> Product | None:
    return Product.objects.select_related("category").filter(id=product_id).first()


SNAPSHOT_COLUMNS = ("id", "sku", "name", "price", "currency", "is_active")


def product_snapshot_rows(*, product_ids) -> list[dict]:
    """``SNAPSHOT_COLUMNS`` of each product, unsorted: the checkout's price read, once per order,
    through a statement built once (``shop.db``) instead of the query compiler."""
    product_ids = list(product_ids)
    if not product_ids:
        return []
    found = select_objects(Product, using="catalog", only=SNAPSHOT_COLUMNS, id__in=product_ids)
    return [{column: getattr(product, column) for column in SNAPSHOT_COLUMNS} for product in found]


def product_ids(*, active_only: bool = True) -> list[uuid.UUID]:
    qs = Product.objects.filter(is_active=True) if active_only else Product.objects.all()
    return list(qs.order_by("id").values_list("id", flat=True))


def category_list() -> QuerySet[Category]:
    return Category.objects.order_by("name", "id")


def review_list(*, product_id: uuid.UUID) -> QuerySet[Review]:
    return Review.objects.filter(product_id=product_id).order_by("-created_at", "-id")


def rating_summary(*, product_id: uuid.UUID) -> tuple[Decimal | None, int]:
    row = Review.objects.filter(product_id=product_id).aggregate(average=Avg("rating"), count=Count("id"))
    average = row["average"]
    if average is not None:
        average = Decimal(str(average)).quantize(Decimal("0.01"))
    return average, row["count"]


def product_ids_matching(*, text: str, limit: int) -> list[uuid.UUID]:
    """An exact SKU or a part of the name (staff search boxes in other contexts)."""
    text = text.strip()
    matches = Product.objects.filter(Q(sku__iexact=text) | Q(name__icontains=text)).order_by("name")
    return list(matches.values_list("id", flat=True)[:limit])
