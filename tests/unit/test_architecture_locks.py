"""The orders context takes its row locks only through ``apps/orders/locks.py``, which states
their order (saga row, then order row): a lock taken anywhere else could take them the other
way round and deadlock with the saga."""

from pathlib import Path

ORDERS = Path(__file__).resolve().parents[2] / "apps" / "orders"


def test_orders_rows_are_locked_only_in_the_locks_module():
    elsewhere = [
        f"{path.relative_to(ORDERS)}:{number}"
        for path in sorted(ORDERS.rglob("*.py"))
        if path.name != "locks.py" and "migrations" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "select_for_update" in line
    ]
    assert elsewhere == [], "lock through apps.orders.locks (saga_lock, then order_lock)"
