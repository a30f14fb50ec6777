"""Celery entry points of the event plumbing: thin, they call the kernel and nothing else."""

from celery import shared_task
from django.conf import settings

from shop.events import bus, inbox, relay
from shop.observability import metrics


@shared_task(bind=True, name="shop.events.deliver", acks_late=True, max_retries=None)
def deliver(self, consumer: str, wire: dict) -> None:
    attempt = self.request.retries + 1
    try:
        inbox.handle(consumer, wire)
    except Exception as exc:
        if isinstance(exc, inbox.PermanentHandlerError) or attempt >= settings.EVENTS_MAX_ATTEMPTS:
            inbox.dead_letter(consumer, wire, exc, attempt)
            return
        metrics.events_retried.labels(consumer).inc()
        raise self.retry(
            exc=exc, countdown=inbox.retry_delay(attempt), queue=bus.subscriber_by_consumer(consumer).queue
        ) from exc


@shared_task(name="shop.events.sweep", acks_late=True, ignore_result=True)
def sweep() -> dict:
    return relay.sweep()


@shared_task(name="shop.events.prune", acks_late=True, ignore_result=True)
def prune() -> dict:
    return relay.prune()
