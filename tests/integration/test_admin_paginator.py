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


# --- the date hierarchy (shop.admin.ProbedDatesQuerySet) ------------------------------------------


def _hierarchy(html: str) -> list[str]:
    """The periods the date hierarchy links to (not its "back" link)."""
    block = re.search(r'<nav class="toplinks">(.*?)</nav>', html, re.S)
    assert block, "no date hierarchy on the page"
    return re.findall(r'<a href="[^"]*">([^<&]+)</a>', block.group(1))


@pytest.mark.parametrize(
    ("params", "kind"),
    [
        ({}, "year"),
        ({"status__exact": "DELIVERED"}, "year"),
        ({"created_at__year": "2025"}, "month"),
        ({"created_at__year": "2025", "created_at__month": "3"}, "day"),
    ],
)
def test_the_date_hierarchy_lists_the_periods_django_would_with_one_probe_each(admin_browser, params, kind):
    from datetime import UTC, datetime

    from apps.orders.models import Order

    moments = [(2024, 12, 31, 23), (2025, 1, 1, 0), (2025, 3, 3, 10), (2025, 3, 3, 11), (2025, 3, 29, 5),
               (2025, 7, 14, 9), (2026, 2, 1, 12)]  # fmt: skip
    for n, (year, month, day, hour) in enumerate(moments):
        order = OrderFactory(items=0, status=OrderStatus.SHIPPED if n % 2 else OrderStatus.DELIVERED)
        Order.objects.filter(pk=order.pk).update(created_at=datetime(year, month, day, hour, tzinfo=UTC))
    with CaptureQueriesContext(connections["orders"]) as probed:
        shown = _hierarchy(admin_browser.get("/admin/orders/order/", params).content.decode())
    # Django's own query over every matching row: the same periods, in the same order.
    expected = list(Order.objects.filter(**params).datetimes("created_at", kind))
    titles = {"year": "{:%Y}", "month": "{:%B %Y}", "day": "{:%B %-d}"}
    assert len(expected) > 1
    assert shown == [titles[kind].format(moment) for moment in expected]
    distinct = [q["sql"] for q in probed.captured_queries if "DISTINCT" in q["sql"].upper()]
    assert not distinct, distinct  # never a pass over every row
    probes = [
        q["sql"]
        for q in probed.captured_queries
        if q["sql"].startswith('SELECT "orders_order"."created_at" AS') and q["sql"].endswith("LIMIT 1")
    ]
    assert len(probes) == len(expected) + 1  # the first row, then one probe after each period found


def test_a_whole_e_mail_address_finds_that_customers_orders_along_its_index(admin_browser):
    OrderFactory(items=0, customer_email="ann@example.com")
    OrderFactory(items=0, customer_email="joann@example.com")  # contains the address, is someone else
    with CaptureQueriesContext(connections["orders"]) as queries:
        response = admin_browser.get("/admin/orders/order/", {"q": "  Ann@Example.COM "})
    assert re.search(r"\b1\s+order\b", response.content.decode())
    searched = [q["sql"] for q in queries.captured_queries if "example.com" in q["sql"].lower()]
    assert searched and all('UPPER("orders_order"."customer_email"::text) = UPPER(' in sql for sql in searched)
