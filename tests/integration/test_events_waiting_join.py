"""A batch waits briefly for the deliveries it handed to threads, so their replies leave in the
batch's messages (shop/events/tasks.py); a delivery that finishes later joins the batch the
process runs then, or sends its own when none runs.

The batch runs in this process against the real broker (the test Redis): the probe's ``on_pinged``
(orders) is made a waiting context's consumer, so each ping runs in a pool thread and publishes
a ``probe.ponged`` reply, whose fast-path send lands on the ``orders`` queue.
"""

import base64
import json
import threading
import time
from types import SimpleNamespace

import pytest
import redis
from django.conf import settings

from shop.events import tasks
from shop.events.envelope import Envelope
from shop.events.tasks import deliver
from tests.conftest import CONTEXT_DBS
from tests.support.eventprobe import control
from tests.support.eventprobe.events import PINGED, PONGED
from tests.support.eventprobe.handlers import AUDIT_CONSUMER, PINGED_CONSUMER
from tests.support.worker import wait_until

pytestmark = pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)


@pytest.fixture(autouse=True)
def _probe_modes_reset():
    yield
    control.reset()  # no handler keeps sleeping for the tests after this one


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("orders")
    yield client
    client.delete("orders")


def _ping_request(consumer: str = PINGED_CONSUMER, queue: str = "orders") -> SimpleNamespace:
    wire = Envelope(type=PINGED, version=2, aggregate_id="join", data={"note": "n", "tier": 1, "reply": True}).to_wire()
    return SimpleNamespace(args=[[[consumer, wire]]], delivery_info={"routing_key": queue})


def _orders_messages(broker) -> list[list[str]]:
    """The event types each message on the orders queue carries."""
    messages = []
    for raw in broker.lrange("orders", 0, -1):
        body = json.loads(base64.b64decode(json.loads(raw)["body"]))
        messages.append([wire["type"] for _consumer, wire in body[0][0]])
    return messages


def test_replies_of_handed_over_deliveries_that_finish_while_the_batch_waits_leave_as_one_message(settings, broker):
    settings.EVENTS_WAITING_CONTEXTS = ["orders"]
    settings.EVENTS_WAITING_JOIN_MS = 30_000
    control.reset()

    deliver([_ping_request() for _ in range(3)])

    assert _orders_messages(broker) == [[PONGED, PONGED, PONGED]]


def test_a_handed_over_delivery_that_finishes_after_the_batch_stopped_waiting_sends_its_own_reply(settings, broker):
    settings.EVENTS_WAITING_CONTEXTS = ["orders"]
    settings.EVENTS_WAITING_JOIN_MS = 0
    control.reset()
    control.set_mode(PINGED_CONSUMER, "sleep:0.3")

    deliver([_ping_request() for _ in range(2)])
    wait_until(lambda: len(_orders_messages(broker)) == 2, timeout=30, message="both replies")

    assert _orders_messages(broker) == [[PONGED], [PONGED]]


def test_replies_that_finish_after_their_batch_stopped_waiting_leave_with_the_batch_running_then(settings, broker):
    settings.EVENTS_WAITING_CONTEXTS = ["orders"]
    settings.EVENTS_WAITING_JOIN_MS = 0
    control.reset()
    control.set_mode(PINGED_CONSUMER, "sleep:0.3")
    control.set_mode(AUDIT_CONSUMER, "sleep:3")  # the next batch's own delivery (catalog, not waiting)

    deliver([_ping_request() for _ in range(2)])  # hands both over and stops waiting at once
    deliver([_ping_request(AUDIT_CONSUMER, "catalog")])  # still running when the pings finish

    assert _orders_messages(broker) == [[PONGED, PONGED]]


@pytest.fixture
def one_waiting_thread(settings):
    """This process's waiting pool rebuilt with one thread (two slots), and the old one back after."""
    settings.EVENTS_WAITING_THREADS = 1
    saved = tasks._pool, tasks._slots
    tasks._pool = tasks._slots = None
    yield
    if tasks._pool is not None:
        tasks._pool.shutdown(wait=True)
    tasks._pool, tasks._slots = saved


def test_a_late_reply_does_not_wait_for_a_batch_that_is_still_waiting_for_thread_slots(
    settings, broker, one_waiting_thread
):
    settings.EVENTS_WAITING_CONTEXTS = ["orders"]
    settings.EVENTS_WAITING_JOIN_MS = 0
    control.reset()
    control.set_mode(PINGED_CONSUMER, "sleep:1")
    deliver([_ping_request()])  # takes the thread; its reply comes after about a second
    returned = []
    later = threading.Thread(
        target=lambda: (deliver([_ping_request() for _ in range(3)]), returned.append(time.monotonic()))
    )
    later.start()  # blocks for a slot until the first ping's thread frees one (about 1 s, then 2 s)

    wait_until(lambda: _orders_messages(broker), timeout=30, message="the first reply")
    first_reply_at = time.monotonic()
    later.join(timeout=30)

    assert returned and first_reply_at < returned[0] - 0.5  # it left while the later batch still waited
