"""Deliveries that wait on the payment provider run in threads the batch does not wait for.

Found by the fault campaign (make chaos): with 5 % of provider calls hanging until the payment
timeout, each batch task waited for its slowest payments delivery, so every pool process spent
most of its time blocked and the orders and inventory queues grew by hundreds of messages.
"""

import threading
from types import SimpleNamespace

from shop.events import tasks

PAYMENTS = "payments.checkout.authorize"
ORDERS = "orders.saga.stock_reserved"


def test_a_hanging_payments_delivery_does_not_hold_the_batch_it_came_in(monkeypatch):
    release, paid = threading.Event(), threading.Event()
    handled: list[str] = []

    def deliver_one(consumer, wire, **_kwargs):
        if consumer == PAYMENTS:
            release.wait(60)  # the provider call hangs
            paid.set()
        handled.append(consumer)

    monkeypatch.setattr(tasks, "deliver_one", deliver_one)
    batch = [
        SimpleNamespace(args=[[[PAYMENTS, {"id": "1"}]], 1], delivery_info={"routing_key": "payments"}),
        SimpleNamespace(args=[[[ORDERS, {"id": "2"}]], 1], delivery_info={"routing_key": "orders"}),
    ]
    runner = threading.Thread(target=tasks.deliver.run, args=(batch,), daemon=True)
    try:
        runner.start()
        runner.join(30)  # a bound for a broken build, not a measurement: the batch returns at once
        assert not runner.is_alive(), "the batch waited for the hanging payments delivery"
        assert handled == [ORDERS]
    finally:
        release.set()
    assert paid.wait(30), "the payments delivery never ran"
