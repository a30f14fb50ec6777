"""The hot reads keep their indexes at a realistic size (PostgreSQL planner, real statistics).

Tens of thousands of rows are loaded with COPY (``tests/support/bulk.py``) and ANALYZEd, so
the planner chooses as it would in production; nothing is forced (no ``enable_seqscan``).
Each list query is checked twice, as ``page_get`` runs it: the page (``LIMIT``) and the
bounded count. A dropped or mismatched index shows up here as a sequential scan of the big
table, or as a sort of all its rows.

Text search is not here: at this size the planner rightly scans for a term matching 2 % of
the products; test_catalog_indexes.py proves the trigram indexes can serve it, and
``make bench-reads`` measures it at 100,000 products.
"""

from datetime import timedelta

import pytest
from django.db.models import QuerySet

from apps.catalog import selectors as catalog
from apps.orders import selectors as orders
from shop.counting import count_limit
from tests.conftest import CONTEXT_DBS
from tests.support import bulk

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)

ORDERS = 40_000
PRODUCTS = 20_000


def _plans(queryset: QuerySet, *, offset: int = 0) -> dict[str, str]:
    return {
        "page": queryset[offset : offset + 11].explain(),
        "count": queryset.values("pk")[: count_limit() + 1].explain(),
    }


def _problems(label: str, plans: dict[str, str], table: str, index: str | None) -> list[str]:
    found = []
    for part, plan in plans.items():
        if f"Seq Scan on {table}" in plan:
            found.append(f"{label} ({part}): sequential scan of {table}\n{plan}")
        if index and index not in plan:
            found.append(f"{label} ({part}): {index} not used\n{plan}")
    return found


def test_order_lists_and_lookups_walk_their_indexes_at_40k_orders():
    data = bulk.orders_load(ORDERS)
    newest = orders.orders_list(user_id=None)
    checks = [
        ("customer's orders", orders.orders_list(user_id=data["power_customer"]), 0, "orders_order_user_created"),
        ("customer's page 50", orders.orders_list(user_id=data["power_customer"]), 490, "orders_order_user_created"),
        ("everyone's orders", newest, 0, "orders_order_created_id"),
        ("status filter", orders.orders_list(user_id=None, status="SHIPPED"), 0, "orders_order_status_created"),
        ("rare status", orders.orders_list(user_id=None, status="PENDING"), 0, "orders_order_status_created"),
        ("by e-mail", orders.orders_list(user_id=None, customer_email=data["power_email"].upper()), 0,
         "orders_order_email_ci"),
    ]  # fmt: skip
    problems = []
    for label, queryset, offset, index in checks:
        problems += _problems(label, _plans(queryset, offset=offset), "orders_order", index)
    last = newest[500]
    after = newest.filter(created_at__lte=last.created_at - timedelta(microseconds=0))
    problems += _problems("cursor page", {"page": after[:11].explain()}, "orders_order", "orders_order_created_id")
    detail = orders.order_get(order_id=data["some_order"]).id
    plan = orders.orders_list(user_id=None).filter(pk=detail).explain()
    problems += _problems("by id", {"page": plan}, "orders_order", "orders_order_pkey")
    problems += _date_hierarchy_problems()
    assert not problems, "\n\n".join(problems)


def test_staff_search_of_orders_by_an_id_walks_an_index_whichever_kind_of_id_it_is():
    """The admin's search by a UUID (an order's, a customer's or a product's) was one OR of the three,
    the order lines' subquery among them: every order and every line read, twice a search."""
    from django.contrib.admin import site

    from apps.orders.models import Order, OrderItem

    data = bulk.orders_load(ORDERS)
    product = OrderItem.objects.values_list("product_id", flat=True).first()
    order_admin = site._registry[Order]
    searches = [
        ("search by order id", str(data["some_order"]), "orders_order_pkey"),
        ("search by customer id", str(data["power_customer"]), "orders_order_user_created"),
        ("search by product id", str(product), "orders_item_product"),
    ]
    problems = []
    for label, term, index in searches:
        found, _ = order_admin.get_search_results(None, Order.objects.all(), term)
        plans = _plans(found.order_by("-created_at", "-id"))
        problems += _problems(label, plans, "orders_order", index)
        problems += _problems(label, plans, "orders_orderitem", None)
    assert not problems, "\n\n".join(problems)


def _date_hierarchy_problems() -> list[str]:
    """The admin changelist's date hierarchy (shop.admin.ProbedDatesQuerySet): each probe for the
    next period with rows is one lookup in the index that starts with created_at (or status)."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    from apps.orders.models import Order
    from shop.admin import _probing

    problems = []
    for label, queryset, index in [
        ("date hierarchy: years", Order.objects.all(), "orders_order_created_id"),
        ("date hierarchy: months of a status", Order.objects.filter(status="SHIPPED"), "orders_order_status_created"),
    ]:
        queryset.__class__ = _probing(type(queryset))
        with CaptureQueriesContext(connections["orders"]) as probes:
            periods = queryset.datetimes("created_at", "year" if "years" in label else "month")
        assert len(periods) > 1, label
        for probe in probes.captured_queries:
            with connections["orders"].cursor() as cursor:
                cursor.execute("EXPLAIN " + probe["sql"])
                plan = "\n".join(row[0] for row in cursor.fetchall())
            problems += _problems(label, {"probe": plan}, "orders_order", index)
    return problems


def test_product_list_filters_and_search_use_indexes_at_20k_products():
    data = bulk.products_load(PRODUCTS)
    filtered = catalog.ProductFilters(category=data["category"], min_price=50, max_price=300)
    checks = [
        ("newest products", catalog.product_list(filters=catalog.ProductFilters()), None),
        ("category and price", catalog.product_list(filters=filtered), None),
        ("cheapest first", catalog.product_list(filters=catalog.ProductFilters(sort_by="price", order="asc")),
         "catalog_product_active_price"),
    ]  # fmt: skip
    problems = []
    for label, queryset, index in checks:
        problems += _problems(label, _plans(queryset), "catalog_product", index)
    assert not problems, "\n\n".join(problems)
