"""Delivery batches sized by the load (shop/events/batches.py), with a real worker subprocess.

A worker with one pool process is made busy by a slow probe delivery; the deliveries that
arrive meanwhile must wait for it and then run together as one task, not queue up in the pool
as one task each. The probe handler records the id of the task (the batch) that ran it. Ten
pongs: a one-process worker prefetches 16 messages (CELERY_WORKER_PREFETCH_MULTIPLIER), so all
of them reach it while the ping runs.
"""

import pytest
from django.db import transaction

from shop.events import publish
from tests.conftest import CONTEXT_DBS
from tests.support.eventprobe import control
from tests.support.eventprobe.events import PINGED, PONGED
from tests.support.eventprobe.handlers import PINGED_CONSUMER, PONGED_CONSUMER
from tests.support.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)]


def _publish(event_type: str, data: dict) -> str:
    with transaction.atomic(using="orders"):
        return publish(event_type, data, aggregate_id="batching", using="orders").id


def test_deliveries_arriving_while_every_pool_process_is_busy_run_as_one_batch(worker_factory):
    worker_factory(concurrency=1)
    control.set_mode(PINGED_CONSUMER, "sleep:3")
    busy = _publish(PINGED, {"note": "holds the only pool process", "tier": 1})
    wait_until(lambda: control.attempts(PINGED_CONSUMER, busy) == 1, message="the slow delivery to start")

    pongs = [_publish(PONGED, {"pingId": busy}) for _ in range(10)]

    wait_until(lambda: all(control.seen(PONGED_CONSUMER, pong) for pong in pongs), timeout=60, message="the pongs")
    tasks = {control.seen(PONGED_CONSUMER, pong)["task"] for pong in pongs}
    assert len(tasks) == 1, f"10 deliveries that waited for a free process ran as {len(tasks)} tasks"
