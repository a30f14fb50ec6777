"""Celery tasks of the catalog context: take ids, call one function, nothing else."""

import uuid

from celery import shared_task

from apps.catalog import caching
from shop.cache import CacheUnavailable


@shared_task(
    name="catalog.invalidate_product_again",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(CacheUnavailable,),
    retry_backoff=True,
    max_retries=10,
)
def invalidate_product_again(product_id: str) -> None:
    """The late delete of ``caching.invalidate_product_later``."""
    caching.invalidate_product(uuid.UUID(product_id), strict=True)
