"""Large, realistic tables in seconds: rows generated here and loaded with PostgreSQL COPY.

Shared by the query-plan tests (tens of thousands of rows) and ``bench/reads.py`` (up to a
million orders and 100,000 products). Rows only: no events, no saga, no stock; reads are
what is under test. The spread is deterministic (seeded) and shaped like a shop's:

* customers: one per ten orders on average, skewed (a few order often, most rarely), plus
  ``POWER_CUSTOMERS`` accounts with ``POWER_ORDERS`` orders each whatever the size, so "a
  customer's page 50" exists at every size and means the same thing;
* statuses mostly DELIVERED, some CANCELLED, a few in flight; dates over two years, more
  recent ones denser (a growing shop); one to three items per order;
* products over the demo catalog's categories and price bands (``apps.catalog.demo``).
"""

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connections

POWER_CUSTOMERS = 3
POWER_ORDERS = 600
STATUSES = (("DELIVERED", 62), ("CANCELLED", 18), ("SHIPPED", 9), ("CONFIRMED", 8), ("PENDING", 3))
EPOCH = datetime(2026, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=730)


def customer_id(index: int) -> uuid.UUID:
    return uuid.UUID(int=0xC0570000_0000_4000_8000_000000000000 + index)


def customer_email(index: int) -> str:
    return f"customer{index}@example.com"


def _copy(alias: str, table: str, columns: list[str], rows, chunk: int = 50_000) -> int:
    """COPY in chunks of ``chunk`` rows, each one statement well within the statement timeout."""
    count, rows = 0, iter(rows)
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    while True:
        with connections[alias].cursor() as cursor, cursor.cursor.copy(sql) as copy:
            written = 0
            for row in rows:
                copy.write_row(row)
                written += 1
                if written == chunk:
                    break
        count += written
        if written < chunk:
            return count


def _defaults(model, given: list[str]) -> dict:
    """Every other NOT NULL column of ``model`` gets its Django default (for columns added later)."""
    return {
        field.column: field.get_default()
        for field in model._meta.concrete_fields
        if field.column not in given and not field.null and not field.primary_key
    }


def orders_load(count: int, *, seed: int = 15, customers: int | None = None, power: bool = True) -> dict:
    """``count`` orders (and their items) in the orders database; returns what to ask for.

    ``customers`` defaults to one per ten orders; ``power=False`` adds no power-customer
    orders (a benchmark growing the table in steps loads them once, with the first step).
    """
    from apps.orders.models import Order, OrderItem

    rng = random.Random(seed)
    customers = customers or max(count // 10, 100)
    statuses = [s for s, weight in STATUSES for _ in range(weight)]
    columns = ["id", "user_id", "customer_email", "status", "currency", "subtotal", "shipping_cost", "total",
               "shipping_street", "shipping_city", "shipping_state", "shipping_zip_code", "shipping_country",
               "shipping_method", "created_at", "updated_at"]  # fmt: skip
    extra = _defaults(Order, columns)
    item_columns = ["order_id", "product_id", "product_name", "sku", "unit_price", "quantity", "line_total"]
    power = POWER_CUSTOMERS * POWER_ORDERS if power else 0
    order_ids: list[uuid.UUID] = []
    items: list[tuple] = []

    def rows():
        for n in range(count):
            # The power customers' orders first, then everyone's, skewed: low indexes order more.
            who = n % POWER_CUSTOMERS if n < power else POWER_CUSTOMERS + int(customers * rng.random() ** 2.5)
            order_id = uuid.UUID(int=rng.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64))
            created = EPOCH - SPAN * (1 - rng.random() ** 0.5)
            lines = rng.choice((1, 1, 1, 2, 2, 3))
            subtotal = Decimal(0)
            for line in range(lines):
                price = Decimal(rng.randint(199, 19999)) / 100
                quantity = rng.choice((1, 1, 1, 2, 3))
                subtotal += price * quantity
                product = uuid.UUID(int=rng.getrandbits(128))
                items.append((order_id, product, f"Product {line}", f"SKU-{rng.randint(1, 99999):05d}", price,
                              quantity, price * quantity))  # fmt: skip
            order_ids.append(order_id)
            yield (
                order_id, customer_id(who), customer_email(who), rng.choice(statuses), "USD", subtotal,
                Decimal("5.00"), subtotal + Decimal("5.00"), f"{rng.randint(1, 999)} Main St", "Springfield",
                "IL", "62701", "USA", "standard", created, created, *extra.values(),
            )  # fmt: skip

    _copy("orders", Order._meta.db_table, columns + list(extra), rows())
    _copy("orders", OrderItem._meta.db_table, item_columns, iter(items))
    with connections["orders"].cursor() as cursor:
        cursor.execute(f"ANALYZE {Order._meta.db_table}")
        cursor.execute(f"ANALYZE {OrderItem._meta.db_table}")
    return {
        "power_customer": customer_id(0),
        "power_email": customer_email(0),
        "some_order": order_ids[len(order_ids) // 2],
        "customers": customers,
    }


def products_load(count: int, *, seed: int = 15) -> dict:
    """``count`` products over the demo categories (created first if missing)."""
    from apps.catalog import demo
    from apps.catalog.models import Category, Product

    rng = random.Random(seed)
    by_slug = {c.slug: c for c in Category.objects.all()}
    for spec in demo.categories():
        if spec["slug"] not in by_slug:
            parent = by_slug.get(spec["parent"]) if spec["parent"] else None
            by_slug[spec["slug"]] = Category.objects.create(name=spec["name"], slug=spec["slug"], parent=parent)
    columns = ["id", "sku", "name", "description", "price", "currency", "is_active", "category_id", "created_at",
               "updated_at"]  # fmt: skip
    extra = _defaults(Product, columns)

    def rows():
        for n in range(1, count + 1):
            spec = demo.product(n)
            created = EPOCH - SPAN * rng.random()
            yield (
                uuid.UUID(int=rng.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)), f"BULK-{seed}-{n:07d}",
                spec["name"], spec["description"], spec["price"], "USD", rng.random() > 0.05,
                by_slug[spec["category"]].id, created, created, *extra.values(),
            )  # fmt: skip

    _copy("catalog", Product._meta.db_table, columns + list(extra), rows())
    with connections["catalog"].cursor() as cursor:
        cursor.execute(f"ANALYZE {Product._meta.db_table}")
    department = next(c.slug for c in by_slug.values() if c.parent_id is None)
    return {"category": department, "search": "kettlebell"}
