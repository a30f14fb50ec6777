"""A list page read before a write must not be stored as the page after it (shop.api.responsecache)."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from apps.catalog import services, views
from tests.conftest import CONTEXT_DBS
from tests.factories.catalog import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)


def test_a_list_page_built_from_rows_read_before_a_price_change_is_not_served_after_it(monkeypatch, settings):
    """The first anonymous GET reads the rows; a price change commits (and bumps the lists' version)
    before its response is stored. The response was stored under the version read at store time,
    the new one, and served with the old price until its TTL (60 s). It is now stored under the version
    read before the view ran, which the next GET no longer finds."""
    settings.LOCAL_CACHE_SECONDS = 0
    product = ProductFactory(price=Decimal("10.00"))
    real_page_get = views.page_get

    def rows_then_a_write(*args, **kwargs):
        page = real_page_get(*args, **kwargs)
        services.product_update(product_id=product.id, data={"price": Decimal("12.00")})
        return page

    monkeypatch.setattr(views, "page_get", rows_then_a_write)
    first = APIClient().get("/api/v1/products")
    monkeypatch.setattr(views, "page_get", real_page_get)
    second = APIClient().get("/api/v1/products")

    assert [item["price"] for item in first.json()["data"]] == ["10.00"]
    assert [item["price"] for item in second.json()["data"]] == ["12.00"]
