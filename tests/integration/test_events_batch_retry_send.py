"""A delivery batch runs on when the broker refuses a failed delivery's retry (shop/events/tasks.py)."""

from types import SimpleNamespace

import pytest
from kombu.exceptions import OperationalError

from shop.events import tasks
from shop.events.envelope import Envelope
from shop.events.store import inbox_model
from tests.conftest import CONTEXT_DBS
from tests.support.eventprobe import control
from tests.support.eventprobe.events import PINGED
from tests.support.eventprobe.handlers import AUDIT_CONSUMER, PINGED_CONSUMER

pytestmark = pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)


def _request(consumer: str, queue: str) -> tuple[SimpleNamespace, str]:
    wire = Envelope(type=PINGED, version=2, aggregate_id="retry", data={"note": "n", "tier": 1}).to_wire()
    return SimpleNamespace(args=[[[consumer, wire]]], delivery_info={"routing_key": queue}), wire["id"]


def test_a_retry_the_broker_refuses_leaves_that_event_owed_and_the_rest_of_the_batch_is_handled(settings, monkeypatch):
    """The batch's first delivery fails, and publishing its retry fails too (the broker refusing a
    publish while the worker's consumer connection lives on: the fault is injected at that send).
    Before, that error ended the batch: the deliveries after it never ran, yet every message of the
    batch was acknowledged, so they waited for the sweeper (a minute or more). Now the failed one
    stays owed (no inbox row; the sweeper re-sends it) and the others are handled at once."""
    settings.EVENTS_WAITING_CONTEXTS = []
    control.reset()
    control.set_mode(PINGED_CONSUMER, "always")
    failing, failing_id = _request(PINGED_CONSUMER, "orders")
    others = [_request(AUDIT_CONSUMER, "catalog") for _ in range(2)]

    def broker_refuses(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.deliver, "apply_async", broker_refuses)
    try:
        tasks.deliver([failing, *(request for request, _ in others)])
    finally:
        control.reset()

    handled = set(inbox_model("catalog").objects.filter(consumer=AUDIT_CONSUMER).values_list("event_id", flat=True))
    assert {str(event_id) for event_id in handled} == {event_id for _, event_id in others}
    assert not inbox_model("orders").objects.filter(consumer=PINGED_CONSUMER, event_id=failing_id).exists()
