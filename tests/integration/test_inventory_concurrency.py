"""No oversell, on PostgreSQL, with real concurrent transactions (one connection per thread)."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.db.models import Sum

from apps.inventory import facade
from apps.inventory.models import Reservation, StockItem, StockMovement
from tests.conftest import CONTEXT_DBS
from tests.factories.inventory import StockItemFactory

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS, transaction=True)

THREADS = 60


def run_concurrently(fn, args_list):
    """Start every call at once (a barrier), each thread on its own connection."""
    barrier = threading.Barrier(len(args_list))

    def worker(args):
        try:
            barrier.wait(timeout=30)
            return fn(*args)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(args_list)) as pool:
        return list(pool.map(worker, args_list))


def test_sixty_concurrent_reservations_against_ten_units_reserve_exactly_ten():
    item = StockItemFactory(on_hand=10)
    pid = item.product_id

    def reserve(order_id):
        return facade.stock_reserve(order_id=order_id, items=[facade.StockLine(pid, 1)])

    outcomes = run_concurrently(reserve, [(uuid.uuid4(),) for _ in range(THREADS)])

    assert sum(o.reserved for o in outcomes) == 10
    assert all(o.shortages == (facade.Shortage(pid, 0, 1),) for o in outcomes if not o.reserved)
    item.refresh_from_db()
    assert (item.on_hand, item.reserved) == (10, 10)
    assert Reservation.objects.filter(product_id=pid, status="RESERVED").aggregate(n=Sum("quantity"))["n"] == 10
    ledger = StockMovement.objects.filter(product_id=pid).aggregate(on=Sum("on_hand_delta"), res=Sum("reserved_delta"))
    assert (ledger["on"], ledger["res"]) == (10, 10)


def test_multi_line_orders_in_opposite_orders_neither_deadlock_nor_oversell():
    a, b = StockItemFactory(on_hand=15), StockItemFactory(on_hand=15)

    def reserve(order_id, first, second):
        return facade.stock_reserve(order_id=order_id, items=[facade.StockLine(first, 1), facade.StockLine(second, 1)])

    args = [(uuid.uuid4(), a.product_id, b.product_id) if i % 2 else (uuid.uuid4(), b.product_id, a.product_id)
            for i in range(50)]  # fmt: skip
    outcomes = run_concurrently(reserve, args)

    assert sum(o.reserved for o in outcomes) == 15
    for pid in (a.product_id, b.product_id):
        stock = StockItem.objects.get(product_id=pid)
        assert (stock.on_hand, stock.reserved) == (15, 15)


def test_the_same_order_reserved_concurrently_is_reserved_once():
    item = StockItemFactory(on_hand=10)
    order = uuid.uuid4()

    def reserve():
        return facade.stock_reserve(order_id=order, items=[facade.StockLine(item.product_id, 3)])

    outcomes = run_concurrently(reserve, [() for _ in range(20)])

    assert all(o.reserved for o in outcomes)
    item.refresh_from_db()
    assert item.reserved == 3
