"""The BFF product page: aggregated through facades, degraded (not failed) when a part is down."""

import uuid
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.db import connections

from apps.bff.services import breaker_name
from apps.catalog import facade as catalog
from shop.resilience import breaker
from tests.conftest import CONTEXT_DBS
from tests.factories.catalog import ProductFactory, ReviewFactory
from tests.factories.inventory import StockItemFactory
from tests.support.queries import assert_max_queries

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


@pytest.fixture(autouse=True)
def _closed_breakers():
    breaker.reset_all()
    yield
    breaker.reset_all()


@contextmanager
def unreachable(alias: str):
    """The database of ``alias`` goes away (as in tests/integration/test_health.py)."""
    conn = connections[alias]
    original = conn.settings_dict["PORT"]
    conn.close()
    conn.settings_dict["PORT"] = 1
    try:
        yield
    finally:
        conn.close()
        conn.settings_dict["PORT"] = original


def url(product_id) -> str:
    return f"/api/v1/bff/products/{product_id}/complete"


@pytest.fixture
def product():
    product = ProductFactory(sku="BFF-1", name="Kettle", price=Decimal("39.00"))
    StockItemFactory(product_id=product.id, on_hand=7)
    ReviewFactory(product=product, rating=4)
    ReviewFactory(product=product, rating=5)
    return product


def test_the_complete_page_aggregates_product_stock_and_rating(api_client, product):
    with assert_max_queries(3):  # product (then cached), availability, rating
        response = api_client.get(url(product.id))
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["product"]["sku"] == "BFF-1" and data["product"]["price"] == "39.00"
    assert data["product"]["category"]["id"] == str(product.category_id)
    assert (data["inStock"], data["availableQuantity"]) == (True, 7)
    assert data["rating"] == {"average": "4.50", "count": 2}
    assert data["degraded"] == []
    with assert_max_queries(0):  # the rendered page, for BFF_PAGE_CACHE_TTL seconds
        assert api_client.get(url(product.id)).json()["data"] == data


def test_out_of_stock_and_unrated(api_client):
    product = ProductFactory()
    StockItemFactory(product_id=product.id, on_hand=0)
    data = api_client.get(url(product.id)).json()["data"]
    assert (data["inStock"], data["availableQuantity"]) == (False, 0)
    assert data["rating"] == {"average": None, "count": 0}


def test_inventory_database_unreachable_degrades_the_page_instead_of_failing_it(api_client, product):
    with unreachable("inventory"):
        response = api_client.get(url(product.id))
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["product"]["id"] == str(product.id)
    assert (data["inStock"], data["availableQuantity"]) == (None, None)
    assert data["rating"]["count"] == 2
    assert data["degraded"] == ["inventory"]


def test_repeated_inventory_failures_open_its_circuit(api_client, product):
    with unreachable("inventory"):
        for _ in range(5):
            assert api_client.get(url(product.id)).json()["data"]["degraded"] == ["inventory"]
    assert breaker.get_breaker(breaker_name("inventory")).current_state == "open"
    assert breaker.get_breaker(breaker_name("reviews")).current_state != "open"


def test_an_open_inventory_circuit_skips_the_inventory_database(api_client, product):
    breaker.get_breaker(breaker_name("inventory")).open()
    with assert_max_queries(0, "inventory"):
        data = api_client.get(url(product.id)).json()["data"]
    assert data["inStock"] is None and data["degraded"] == ["inventory"]


def test_reviews_unavailable_degrade_the_rating_only(api_client, product):
    catalog.product_detail_get(product_id=product.id)  # the product is now cached (not the whole page)
    with unreachable("catalog"):
        response = api_client.get(url(product.id))
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["rating"] is None and data["degraded"] == ["reviews"]
    assert (data["product"]["sku"], data["availableQuantity"]) == ("BFF-1", 7)


def test_catalog_unreachable_without_a_cached_product_is_503(api_client, product):
    with unreachable("catalog"):
        response = api_client.get(url(product.id))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "CATALOG_UNAVAILABLE"


def test_unknown_or_inactive_products_are_404(api_client):
    hidden = ProductFactory(is_active=False)
    for product_id in (uuid.uuid4(), hidden.id):
        response = api_client.get(url(product_id))
        assert response.status_code == 404 and response.json()["error"]["code"] == "PRODUCT_NOT_FOUND"


def test_a_degraded_page_is_not_replayed_once_the_part_is_back(api_client, product):
    breaker.get_breaker(breaker_name("inventory")).open()
    degraded = api_client.get(url(product.id))
    assert degraded.json()["data"]["degraded"] == ["inventory"] and degraded["Cache-Control"] == "no-store"
    breaker.reset_all()
    assert api_client.get(url(product.id)).json()["data"]["availableQuantity"] == 7
