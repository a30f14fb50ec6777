"""The big admin changelists count at most PAGINATION_COUNT_LIMIT rows (shop.admin.BoundedCountPaginator)."""

import re

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from apps.orders.models import OrderStatus
from tests.conftest import CONTEXT_DBS
from tests.factories.orders import OrderFactory

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


def _order_counts(queries) -> list[str]:
    return [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and 'FROM "orders_order"' in q["sql"]]


def test_order_changelist_counts_at_most_the_limit_and_says_so(admin_browser, settings):
    settings.PAGINATION_COUNT_LIMIT = 5
    for _ in range(8):
        OrderFactory(items=0)
    with CaptureQueriesContext(connections["orders"]) as queries:
        response = admin_browser.get("/admin/orders/order/")
    assert response.status_code == 200
    assert re.search(r"5\+\s+orders", response.content.decode()), "a lower bound must read as one"
    counts = _order_counts(queries.captured_queries)
    assert counts and all("LIMIT 6" in sql for sql in counts), counts  # never an unbounded COUNT(*)


def test_a_small_filtered_changelist_still_gets_its_exact_count(admin_browser, settings):
    settings.PAGINATION_COUNT_LIMIT = 5
    for _ in range(6):
        OrderFactory(items=0)
    OrderFactory(items=0, status=OrderStatus.SHIPPED)
    OrderFactory(items=0, status=OrderStatus.SHIPPED)
    response = admin_browser.get("/admin/orders/order/", {"status__exact": "SHIPPED"})
    assert re.search(r"\b2\s+orders", response.content.decode())
