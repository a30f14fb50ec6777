"""The catalog's cache keys and their invalidation (the mechanics live in ``shop.cache``).

Product detail entries are deleted by key; list pages are a family invalidated by bumping
the ``catalog:products`` version, so no key scan is ever needed. Each has two layers: the
data the views build from (``product_detail``, ``product_page``) and, for anonymous GETs,
the rendered response (``PRODUCT_HTTP``, ``PRODUCTS_HTTP``, see ``shop.api.responsecache``);
one invalidation drops both.
"""

import hashlib
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings

from shop import cache
from shop.api.responsecache import PublicCache

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
    http_keys = [_product_http_key(product_id, version) for version in settings.REST_FRAMEWORK["ALLOWED_VERSIONS"]]
    cache.invalidate(product_key(product_id), *http_keys, strict=strict)
    invalidate_lists(strict=strict)


def invalidate_product_later(product_id) -> None:
    """Delete the product's copies once more, ``CATALOG_LATE_INVALIDATION_SECONDS`` from now.

    A reader that read the row before the write committed and wrote its copy back after both the
    commit's delete and the event's left that copy for the detail's whole TTL (a day): an old price
    or a deactivated product on show. Every reader ends within a request's time limit (gunicorn's
    30 s), so a delete after that finds any such copy: staleness is bounded by that delay."""
    from apps.catalog.tasks import invalidate_product_again

    invalidate_product_again.apply_async(args=[str(product_id)], countdown=settings.CATALOG_LATE_INVALIDATION_SECONDS)


# --- rendered responses of anonymous GETs ------------------------------------------------------


def _product_http_key(product_id, version: str) -> str:
    return f"{product_key(product_id)}:http:{version}"


def _product_request_key(request, *, version: str, product_id) -> str | None:
    return None if request.GET else _product_http_key(product_id, version)


def _products_request_key(request, *, version: str) -> str:
    return "http:" + hashlib.sha256(request.get_full_path().encode()).hexdigest()[:40]


PRODUCT_HTTP = PublicCache(
    name="product_http", key=_product_request_key, ttl=lambda: settings.CATALOG_PRODUCT_CACHE_TTL
)
PRODUCTS_HTTP = PublicCache(
    name="product_list_http",
    key=_products_request_key,
    ttl=lambda: settings.CATALOG_LIST_CACHE_TTL,
    namespace=LIST_NAMESPACE,
)
