"""Probe subscribers. ``probe.pinged`` has two consumers in two contexts (one message each).

``on_pinged`` is a v2-only handler: it requires ``tier``, which v1 events lack until upcast.
"""

import time

import structlog
from celery import shared_task, signals
from django.db import transaction

from shop.events import publish, subscriber
from shop.observability.context import get_causation_id, get_correlation_id
from tests.support.eventprobe import control
from tests.support.eventprobe.events import BENCHED, PINGED, PONGED

logger = structlog.get_logger("eventprobe")

PINGED_CONSUMER = "eventprobe.on_pinged"
AUDIT_CONSUMER = "eventprobe.audit_pinged"
PONGED_CONSUMER = "eventprobe.on_ponged"
BENCHED_CONSUMER = "eventprobe.on_benched"


class ProbeFailure(RuntimeError):
    """The failure a test asked for."""


_running_task = {"id": None}


@signals.task_prerun.connect(weak=False)
def _remember_running_task(task_id=None, **kwargs) -> None:
    """A delivery batch is one task: the pongs record its id, so a test sees how they were grouped."""
    _running_task["id"] = task_id


@subscriber(PINGED, consumer=PINGED_CONSUMER, context="orders")
def on_pinged(envelope):
    attempt = control.count_attempt(PINGED_CONSUMER, envelope.id)
    if control.should_fail(PINGED_CONSUMER, attempt):
        raise ProbeFailure(f"asked to fail (attempt {attempt})")
    if envelope.version != 2:
        raise ProbeFailure(f"v2-only handler got v{envelope.version}")
    time.sleep(control.sleep_seconds(PINGED_CONSUMER))
    tier = envelope.data["tier"]
    control.record_seen(
        PINGED_CONSUMER,
        envelope.id,
        {
            "version": envelope.version,
            "tier": tier,
            "correlationId": get_correlation_id(),
            "causationId": get_causation_id(),
        },
    )
    logger.info("probe_pinged_handled", tier=tier)
    if envelope.data.get("reply"):
        with transaction.atomic(using="orders"):
            publish(PONGED, {"pingId": envelope.id}, aggregate_id=envelope.aggregate_id, using="orders")


@subscriber(PINGED, consumer=AUDIT_CONSUMER, context="catalog")
def audit_pinged(envelope):
    control.count_attempt(AUDIT_CONSUMER, envelope.id)
    time.sleep(control.sleep_seconds(AUDIT_CONSUMER))


@subscriber(PONGED, consumer=PONGED_CONSUMER, context="orders")
def on_ponged(envelope):
    control.count_attempt(PONGED_CONSUMER, envelope.id)
    control.record_seen(PONGED_CONSUMER, envelope.id, {"task": _running_task["id"]})
    time.sleep(control.sleep_seconds(PONGED_CONSUMER))


@subscriber(BENCHED, consumer=BENCHED_CONSUMER, context="orders")
def on_benched(envelope):
    """Nothing but the inbox row: the benchmark measures the plumbing, not a handler."""


@shared_task(name="eventprobe.explode", ignore_result=True)
def explode(card_token: str, password: str) -> None:
    """A task that fails with secrets in its arguments and message (the Sentry test)."""
    logger.info("about_to_explode")
    raise ProbeFailure(f"provider refused {card_token} for a customer whose password is {password}")
