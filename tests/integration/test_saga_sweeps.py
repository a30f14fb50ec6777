"""Saga recovery sweeps running at once (every worker process's sweeper and beat's task): they
share the overdue sagas instead of queueing behind each other, and keep a steady cadence.

Found by ``make chaos``: during a saturated settle one saga stayed 14.4 s past its deadline
against a bound of one 10 s sweep, while several sweepers walked the same list of overdue
sagas, each waiting on the row lock the one ahead of it held."""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connections, transaction

from apps.orders import locks
from apps.orders.saga import orchestrator
from apps.orders.saga import tasks as saga_tasks
from apps.orders.saga.models import CheckoutSaga, SagaStepLog
from tests.conftest import CONTEXT_DBS
from tests.factories.orders import order_placed as place
from tests.factories.orders import stocked_products
from tests.support.queries import count_queries
from tests.support.saga import expire_saga_deadlines

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS, transaction=True)


@pytest.fixture
def products():
    return stocked_products(2, price=Decimal("10.00"), on_hand=50)


def attempts(order_id) -> int:
    return CheckoutSaga.objects.get(order_id=order_id).step_attempts


def test_a_sweep_passes_over_a_saga_another_sweeper_holds_and_recovers_the_rest_without_waiting(customer_api, products):
    held, others = place(customer_api, products), [place(customer_api, products) for _ in range(2)]
    expire_saga_deadlines()
    locked, release = threading.Event(), threading.Event()

    def other_sweeper_holds_the_most_overdue() -> None:
        try:
            with transaction.atomic(using="orders"):
                assert locks.saga_lock(held) is not None
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=other_sweeper_holds_the_most_overdue)
    holder.start()
    try:
        assert locked.wait(10)
        with connections["orders"].cursor() as cursor:  # waiting on the held row fails instead of hanging
            cursor.execute("SET lock_timeout = '3s'")
        assert orchestrator.sagas_recover() == {"retried": 2}
    finally:
        release.set()
        holder.join()
        with connections["orders"].cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert [attempts(order_id) for order_id in others] == [2, 2]
    assert attempts(held) == 1  # left to the sweeper that holds it
    assert orchestrator.sagas_recover() == {"retried": 1}  # once released, the next sweep takes it


def test_a_saga_whose_recovery_fails_is_left_for_the_next_sweep_and_the_others_are_still_recovered(
    customer_api, products, monkeypatch
):
    broken, others = place(customer_api, products), [place(customer_api, products) for _ in range(2)]
    expire_saga_deadlines()
    send = orchestrator._send_step_command

    def fails_for_one_saga(saga, order):
        if saga.order_id == broken:
            raise RuntimeError("injected: this saga's command cannot be written")
        return send(saga, order)

    monkeypatch.setattr(orchestrator, "_send_step_command", fails_for_one_saga)
    assert orchestrator.sagas_recover() == {"error": 1, "retried": 2}
    assert attempts(broken) == 1  # its transaction rolled back
    assert [attempts(order_id) for order_id in others] == [2, 2]
    monkeypatch.setattr(orchestrator, "_send_step_command", send)
    assert orchestrator.sagas_recover() == {"retried": 1}


def test_a_sweep_takes_each_overdue_saga_once_even_one_its_handling_left_overdue(customer_api, products, monkeypatch):
    """Every path of the recovery moves the deadline or ends the saga; were one to forget, the
    sweep must not spin on that saga until its limit, as one list per sweep never did."""
    for _ in range(2):
        place(customer_api, products)
    expire_saga_deadlines()
    monkeypatch.setattr(orchestrator, "_retry_or_give_up", lambda saga: "left overdue")
    assert orchestrator.sagas_recover() == {"left overdue": 2}


def test_a_recovered_saga_s_step_log_rows_are_written_in_one_statement(customer_api, products):
    """A retry logs TIMED_OUT_RETRYING and the re-sent step's SENT: one insert, as every other
    entry point of the saga writes its rows (``_step_log_written_once``)."""
    order_id = place(customer_api, products)
    expire_saga_deadlines()
    logged_before = SagaStepLog.objects.filter(saga__order_id=order_id).count()
    with count_queries("orders") as captured:
        assert orchestrator.sagas_recover() == {"retried": 1}
    table = SagaStepLog._meta.db_table
    inserts = [q["sql"] for q in captured["orders"].captured_queries if q["sql"].startswith(f'INSERT INTO "{table}"')]
    assert SagaStepLog.objects.filter(saga__order_id=order_id).count() - logged_before == 2
    assert len(inserts) == 1, inserts


def test_a_sweeper_starts_its_sweeps_on_a_fixed_cadence_even_when_a_sweep_takes_as_long_as_the_interval(
    monkeypatch,
):
    """With the wait counted from the end of each sweep, a sweep as long as the interval
    doubled the time between starts (1.0 s here); counted from the start it stays 0.5 s."""
    interval, starts, stop = 0.5, [], threading.Event()

    def slow_sweep():
        starts.append(time.monotonic())
        if len(starts) >= 4:
            stop.set()
        time.sleep(interval)  # a sweep through a backlog
        return {}

    monkeypatch.setattr(saga_tasks.orchestrator, "sagas_recover", slow_sweep)
    monkeypatch.setattr(saga_tasks.random, "uniform", lambda low, high: 0.0)
    sweeper = threading.Thread(target=saga_tasks.sweep_forever, args=(interval, stop))
    sweeper.start()
    sweeper.join(10)
    assert not sweeper.is_alive()
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    assert len(gaps) == 3
    assert max(gaps) < 0.8 * 2 * interval, gaps
