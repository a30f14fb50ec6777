"""Celery entry points of the event plumbing: thin, they call the kernel and nothing else."""

import structlog
from celery import shared_task
from django.conf import settings

from shop.events import bus, inbox, relay
from shop.events.envelope import MalformedEnvelope
from shop.events.registry import InvalidEventData
from shop.observability import metrics

logger = structlog.get_logger("shop.events.tasks")

# Retrying cannot change these outcomes: dead-letter on the first attempt. Everything else
# (database or network trouble, a schema this process does not know yet during a rolling
# deploy, a bug fixed by the next deploy) is retried with backoff and dead-lettered after
# EVENTS_MAX_ATTEMPTS, where staff can replay it.
PERMANENT_ERRORS = (inbox.PermanentHandlerError, InvalidEventData, MalformedEnvelope)


def _queue_of(consumer: str, request) -> str | None:
    """The consumer's queue; for a consumer this process does not know, the queue it came from."""
    if bus.consumer_exists(consumer):
        return bus.subscriber_by_consumer(consumer).queue
    return (request.delivery_info or {}).get("routing_key")


@shared_task(bind=True, name="shop.events.deliver", acks_late=True, max_retries=None, ignore_result=True)
def deliver(self, consumer: str, wire: dict) -> None:
    attempt = self.request.retries + 1
    try:
        inbox.handle(consumer, wire)
        return
    except Exception as exc:  # noqa: BLE001 - every failure is retried or parked below
        error = exc
    queue = _queue_of(consumer, self.request)
    permanent = isinstance(error, PERMANENT_ERRORS) or not bus.consumer_exists(consumer)
    if permanent or attempt >= settings.EVENTS_MAX_ATTEMPTS:
        try:
            inbox.dead_letter(consumer, wire, error, attempt, alias=queue if queue in settings.CONTEXTS else None)
            return
        except Exception:
            logger.exception("dead_letter_failed", consumer=consumer, event_id=wire.get("id"))
            if self.request.is_eager:
                return  # eager retries recurse at once: there is no later to wait for
    else:
        logger.warning("delivery_failed", consumer=consumer, attempt=attempt, error=f"{type(error).__name__}: {error}")
    metrics.events_retried.labels(consumer if bus.consumer_exists(consumer) else "unknown").inc()
    raise self.retry(exc=error, countdown=inbox.retry_delay(attempt), queue=queue)


@shared_task(name="shop.events.sweep", acks_late=True, ignore_result=True)
def sweep() -> dict:
    return relay.sweep()


@shared_task(name="shop.events.prune", acks_late=True, ignore_result=True)
def prune() -> dict:
    return relay.prune()
