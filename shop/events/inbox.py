"""Consuming: exactly-once *effects* from at-least-once delivery.

The inbox row ``(consumer, event id)`` is inserted first, in the same transaction as the
handler's writes. A redelivered message hits the unique key and is a no-op; a handler that
fails rolls its inbox row back with everything else, so the retry runs it again.

A subscriber's ``prepare`` (a remote call, such as the payment provider's) runs before that
transaction, so a slow remote party holds no connection of the context while it answers: it
must be safe to repeat (the provider's idempotency key), because a duplicate delivery runs it
before the inbox row tells it apart.
"""

import random
import traceback
import uuid

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from shop.db import insert_unless_exists
from shop.events import bus, registry
from shop.events.envelope import Envelope
from shop.events.store import dead_letter_model, inbox_model
from shop.observability import metrics, tracing
from shop.observability.context import causation_id_var, correlation_id_var

logger = structlog.get_logger("shop.events.inbox")
# A retry waits in the worker's memory, unacknowledged, until its countdown ends; the broker's
# visibility timeout must outlast that wait (checked at start-up by shop_events.E002).
MAX_RETRY_DELAY_SECONDS = 60.0


class PermanentHandlerError(Exception):
    """A handler failure that retrying cannot fix: dead-letter at once."""


def handle(consumer: str, wire: dict) -> bool:
    """Run ``consumer``'s handler for ``wire`` once. Returns False for a duplicate delivery."""
    sub = bus.subscriber_by_consumer(consumer)
    envelope = registry.upcast(Envelope.from_wire(wire))
    alias = sub.context
    cid_token = correlation_id_var.set(envelope.correlation_id)
    cause_token = causation_id_var.set(envelope.id)
    # Bound for the handler's log lines in every mode (eager delivery has no task headers).
    with (
        structlog.contextvars.bound_contextvars(
            correlation_id=envelope.correlation_id, event_id=envelope.id, event_type=envelope.type, consumer=consumer
        ),
        tracing.delivery_span(
            f"deliver {envelope.type} to {consumer}", envelope.metadata, consumer=consumer, event_id=envelope.id
        ),
    ):
        try:
            prepared = (sub.prepare(envelope),) if sub.prepare is not None else ()
            with transaction.atomic(using=alias):
                first = insert_unless_exists(
                    inbox_model(alias),
                    using=alias,
                    conflict=("consumer", "event_id"),
                    consumer=consumer,
                    event_id=uuid.UUID(envelope.id),
                    event_type=envelope.type,
                )
                if not first:
                    logger.debug("duplicate_delivery")
                    metrics.events_duplicates.labels(consumer).inc()
                    return False
                sub.handler(envelope, *prepared)
        finally:
            correlation_id_var.reset(cid_token)
            causation_id_var.reset(cause_token)
    metrics.events_delivered.labels(consumer).inc()
    return True


def retry_delay(attempt: int) -> float:
    """Exponential backoff with "equal jitter" (half fixed, half random), capped at a minute.

    The fixed half keeps a minimum spacing between attempts; the random half spreads the
    retries of many messages that failed together (e.g. during an outage).
    """
    ceiling = min(MAX_RETRY_DELAY_SECONDS, settings.EVENTS_RETRY_BASE_SECONDS * (2 ** (attempt - 1)))
    return random.uniform(ceiling / 2, ceiling)


def dead_letter(consumer: str, wire: dict, error: BaseException, attempts: int, *, alias: str | None = None) -> None:
    """Park a delivery for staff. ``alias`` is needed only when the consumer no longer exists."""
    if alias is None:
        alias = bus.subscriber_by_consumer(consumer).context
    DeadLetter = dead_letter_model(alias)
    with transaction.atomic(using=alias):
        DeadLetter.objects.using(alias).update_or_create(
            consumer=consumer,
            event_id=_event_uuid(wire),
            defaults={
                "event_type": str(wire.get("type", ""))[:100],
                "envelope": wire,
                "error": describe(error),
                "attempts": attempts,
                "status": DeadLetter.Status.FAILED,
                "replayed_at": None,
            },
        )
    metrics.events_dead_lettered.labels(consumer if bus.consumer_exists(consumer) else "unknown").inc()
    logger.error(
        "dead_letter", consumer=consumer, event_id=wire.get("id"), event_type=wire.get("type"), error=str(error)
    )


def describe(error: BaseException) -> str:
    """ "Class: message" first (the admin filters and lists by it), then the traceback's tail."""
    trace = "".join(traceback.format_exception(error))
    return f"{type(error).__name__}: {error}\n\n{trace[-3000:]}"[:5000]


def _event_uuid(wire: dict) -> uuid.UUID:
    """The event id, or a fixed one for a message so malformed that it has none (kept, not lost)."""
    try:
        return uuid.UUID(str(wire["id"]))
    except (KeyError, TypeError, ValueError):
        return uuid.UUID(int=0)


def replay(alias: str, dead_letter_id) -> bool:
    """Run a dead letter's handler again, in this process. True when it succeeded (or was a duplicate)."""
    DeadLetter = dead_letter_model(alias)
    letter = DeadLetter.objects.using(alias).get(pk=dead_letter_id)
    try:
        handle(letter.consumer, letter.envelope)
    except Exception as exc:  # noqa: BLE001 - recorded on the dead letter
        DeadLetter.objects.using(alias).filter(pk=letter.pk).update(error=describe(exc), attempts=letter.attempts + 1)
        logger.warning("replay_failed", consumer=letter.consumer, event_id=str(letter.event_id), error=str(exc))
        return False
    DeadLetter.objects.using(alias).filter(pk=letter.pk).update(
        status=DeadLetter.Status.REPLAYED, replayed_at=timezone.now()
    )
    return True


def replay_all_failed(alias: str | None = None) -> dict[str, int]:
    aliases = [alias] if alias else list(settings.CONTEXTS)
    outcome = {"replayed": 0, "failed": 0}
    for name in aliases:
        DeadLetter = dead_letter_model(name)
        pending = DeadLetter.objects.using(name).filter(status=DeadLetter.Status.FAILED).order_by("created_at")
        for pk in pending.values_list("pk", flat=True):
            outcome["replayed" if replay(name, pk) else "failed"] += 1
    return outcome
