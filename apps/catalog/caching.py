"""The catalog's cache keys and their invalidation (the mechanics live in ``shop.cache``).

Product detail entries are deleted by key; list pages are a family invalidated by bumping
the ``catalog:products`` version, so no key scan is ever needed.
"""

from collections.abc import Callable
from typing import TypeVar

from django.conf import settings

from shop import cache

T = TypeVar("T")

LIST_NAMESPACE = "catalog:products"


def product_key(product_id) -> str:
    return f"catalog:product:{product_id}"


def product_detail(product_id, build: Callable[[], T]) -> T:
    return cache.get_or_build(product_key(product_id), build, ttl=settings.CATALOG_PRODUCT_CACHE_TTL, name="product")


def product_page(params_key: str, build: Callable[[], T]) -> T:
    return cache.get_or_build(
        params_key, build, ttl=settings.CATALOG_LIST_CACHE_TTL, name="product_list", namespace=LIST_NAMESPACE
    )


def invalidate_lists(*, strict: bool = False) -> None:
    cache.bump(LIST_NAMESPACE, strict=strict)


def invalidate_product(product_id, *, strict: bool = False) -> None:
    cache.invalidate(product_key(product_id), strict=strict)
    invalidate_lists(strict=strict)
