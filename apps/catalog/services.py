"""Writes of the catalog context: each function is one use case in one transaction on its alias.

Every product write publishes an event in the same transaction (outbox). The cache is
invalidated twice: right after commit here (so the writer's next read is fresh) and again
by the ``catalog.product_updated`` subscriber (guaranteed delivery, retried while Redis is
unreachable, and late enough to also evict a stale copy a concurrent reader may have put
back between the commit and the first delete).
"""

import uuid
from collections.abc import Iterable
from decimal import Decimal
from functools import partial

from django.db import IntegrityError, transaction

from apps.catalog import caching, selectors
from apps.catalog.errors import CategoryNotFound, CategoryParentInvalid, ProductNotFound, ReviewExists, SkuTaken
from apps.catalog.events import PRODUCT_CREATED, PRODUCT_UPDATED
from apps.catalog.models import Category, Product, Review
from shop.events import publish

ALIAS = "catalog"
UPDATABLE = {
    "sku": "sku",
    "name": "name",
    "description": "description",
    "price": "price",
    "currency": "currency",
    "category_id": "categoryId",
    "is_active": "isActive",
}


def _payload(product: Product) -> dict:
    return {
        "productId": str(product.id),
        "sku": product.sku,
        "name": product.name,
        "price": str(product.price),
        "currency": product.currency,
        "isActive": product.is_active,
        "categoryId": str(product.category_id) if product.category_id else None,
    }


def _invalidate_after_commit(product_id) -> None:
    transaction.on_commit(partial(caching.invalidate_product, product_id), using=ALIAS)


def _check_category(category_id) -> None:
    if category_id is not None and not Category.objects.filter(id=category_id).exists():
        raise CategoryNotFound(str(category_id))


def product_create(
    *,
    sku: str,
    name: str,
    price: Decimal,
    currency: str = "USD",
    description: str = "",
    category_id: uuid.UUID | None = None,
    is_active: bool = True,
) -> Product:
    with transaction.atomic(using=ALIAS):
        _check_category(category_id)
        try:
            with transaction.atomic(using=ALIAS):
                product = Product.objects.create(
                    sku=sku_normalized(sku),
                    name=name,
                    description=description,
                    price=price,
                    currency=currency.upper(),
                    category_id=category_id,
                    is_active=is_active,
                )
        except IntegrityError:
            raise SkuTaken(sku)
        publish(PRODUCT_CREATED, _payload(product), aggregate_id=product.id, using=ALIAS)
        _invalidate_after_commit(product.id)
    return product


def product_update(*, product_id: uuid.UUID, data: dict) -> Product:
    """Apply ``data`` (a subset of ``UPDATABLE``); no change, no write and no event."""
    unknown = set(data) - set(UPDATABLE)
    if unknown:
        raise ValueError(f"Not updatable: {sorted(unknown)}")
    data = dict(data)
    if "sku" in data:
        data["sku"] = sku_normalized(data["sku"])
    if "currency" in data:
        data["currency"] = data["currency"].upper()
    with transaction.atomic(using=ALIAS):
        product = Product.objects.select_for_update().filter(id=product_id).first()
        if product is None:
            raise ProductNotFound(str(product_id))
        changed = [field for field, value in data.items() if getattr(product, field) != value]
        if not changed:
            return product
        if "category_id" in changed:
            _check_category(data["category_id"])
        for field in changed:
            setattr(product, field, data[field])
        try:
            with transaction.atomic(using=ALIAS):
                product.save(update_fields=[*changed, "updated_at"])
        except IntegrityError:
            raise SkuTaken(data.get("sku", product.sku))
        payload = {**_payload(product), "changedFields": sorted(UPDATABLE[field] for field in changed)}
        publish(PRODUCT_UPDATED, payload, aggregate_id=product.id, using=ALIAS)
        _invalidate_after_commit(product.id)
    return Product.objects.select_related("category").get(id=product.id)


def product_deactivate(*, product_id: uuid.UUID) -> Product:
    """The DELETE of the API: the row stays, because orders and reviews still refer to it."""
    return product_update(product_id=product_id, data={"is_active": False})


def sku_normalized(sku: str) -> str:
    """SKUs are compared and stored trimmed and upper-case (the admin's form checks uniqueness on this)."""
    return sku.strip().upper()


def category_parent_refusal(*, category_id: uuid.UUID, parent_id: uuid.UUID | None) -> str | None:
    """Why ``parent_id`` cannot be ``category_id``'s parent (itself, or one of its own subcategories),
    or None."""
    if parent_id is not None and category_id in selectors.category_lineage(category_id=parent_id):
        return "A category cannot be placed under itself or one of its own subcategories."
    return None


def category_save(*, category: Category) -> Category:
    """Create or change a category (staff). Product pages and list pages embed the category, so
    its products' cached copies and the cached lists are dropped after commit.

    A parent that would close a cycle is refused (``CategoryParentInvalid``): the category filter of
    the product list walks down the tree, and a category under itself kept that walk, and the
    public request running it, going until the worker was killed. The category rows are locked
    first, so two saves that would each close half of a cycle cannot both pass the check."""
    with transaction.atomic(using=ALIAS):
        list(Category.objects.using(ALIAS).select_for_update().order_by("id").values_list("id", flat=True))
        refusal = category_parent_refusal(category_id=category.pk, parent_id=category.parent_id)
        if refusal is not None:
            raise CategoryParentInvalid(refusal)
        category.save(using=ALIAS)
        for product_id in Product.objects.filter(category_id=category.pk).values_list("id", flat=True):
            transaction.on_commit(partial(caching.invalidate_product, product_id), using=ALIAS)
        transaction.on_commit(caching.invalidate_lists, using=ALIAS)
    return category


def review_create(*, product_id: uuid.UUID, user_id: uuid.UUID, rating: int, text: str = "") -> Review:
    with transaction.atomic(using=ALIAS):
        if not Product.objects.filter(id=product_id, is_active=True).exists():
            raise ProductNotFound(str(product_id))
        try:
            with transaction.atomic(using=ALIAS):
                return Review.objects.create(product_id=product_id, user_id=user_id, rating=rating, text=text)
        except IntegrityError:
            raise ReviewExists(str(product_id))


def catalog_seed(*, categories: Iterable[dict], products: Iterable[dict]) -> int:
    """Insert demo categories (by slug) and products (by SKU) that do not exist yet, publishing
    ``catalog.product_created`` for each new product. Returns how many products were new."""
    with transaction.atomic(using=ALIAS):
        by_slug = {c.slug: c for c in Category.objects.all()}
        for spec in categories:
            if spec["slug"] not in by_slug:
                parent = by_slug.get(spec.get("parent")) if spec.get("parent") else None
                by_slug[spec["slug"]] = Category.objects.create(name=spec["name"], slug=spec["slug"], parent=parent)
        products = list(products)
        existing = set(Product.objects.filter(sku__in=[p["sku"] for p in products]).values_list("sku", flat=True))
        new = [
            Product(
                sku=spec["sku"],
                name=spec["name"],
                description=spec.get("description", ""),
                price=spec["price"],
                currency=spec.get("currency", "USD"),
                category=by_slug[spec["category"]],
            )
            for spec in products
            if spec["sku"] not in existing
        ]
        Product.objects.bulk_create(new)
        for product in new:
            publish(PRODUCT_CREATED, _payload(product), aggregate_id=product.id, using=ALIAS)
        if new:
            transaction.on_commit(caching.invalidate_lists, using=ALIAS)
    return len(new)
