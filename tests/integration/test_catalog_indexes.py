"""Every filter and sort of the product list can be served by an index (PostgreSQL planner).

Sequential scans are disabled for the check, so the answer does not depend on table size:
if no index fits, PostgreSQL still has to seq-scan and the test fails.
"""

from decimal import Decimal

import pytest
from django.db import connections

from apps.catalog import selectors
from apps.catalog.selectors import ProductFilters
from tests.conftest import CONTEXT_DBS
from tests.factories.catalog import ProductFactory

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        (ProductFilters(), "catalog_product_active_created"),
        (ProductFilters(sort_by="price", order="asc"), "catalog_product_active_price"),
        (ProductFilters(sort_by="price", order="desc"), "catalog_product_active_price"),
        (ProductFilters(sort_by="name", order="asc"), "catalog_product_active_name"),
        (
            ProductFilters(min_price=Decimal("10"), max_price=Decimal("20"), sort_by="price"),
            "catalog_product_active_price",
        ),
        (ProductFilters(active=False), "catalog_product_active_created"),
    ],
)
def test_list_query_uses_an_index(filters, index):
    ProductFactory()
    with connections["catalog"].cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = selectors.product_list(filters=filters)[:10].explain()  # a page, as the API asks
    assert index in plan, plan
    assert "Seq Scan on catalog_product" not in plan, plan


def test_search_is_served_by_the_trigram_indexes():
    ProductFactory()
    with connections["catalog"].cursor() as cursor:  # only a bitmap scan on a matching index remains
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
    plan = selectors.product_list(filters=ProductFilters(search="kettle", active=None)).order_by().explain()
    for column in ("name", "sku", "description"):
        assert f"catalog_product_{column}_trgm" in plan, plan


def test_category_filter_uses_the_category_index():
    product = ProductFactory()
    with connections["catalog"].cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = selectors.product_list(filters=ProductFilters(category=product.category.slug)).explain()
    assert "Seq Scan on catalog_product " not in plan + " ", plan
