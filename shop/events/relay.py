"""Moves committed outbox rows to subscribers' queues.

Rows are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``, so any number of relays (the
on-commit kick in every web process, the beat sweeper) can run at once without sending a
row twice. With a real broker the messages are sent *before* the rows are marked sent, in
the claiming transaction: a crash in between re-sends (at-least-once; the inbox removes
duplicates) instead of losing. In-process delivery (no broker, or tests draining the
outbox) runs handlers after the claim commits so they never nest in the relay's transaction.
"""

from collections.abc import Callable
from datetime import timedelta

import structlog
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from shop.events import bus
from shop.events.store import outbox_model
from shop.observability import metrics
from shop.observability.celery_signals import CAUSATION_HEADER, CORRELATION_HEADER

logger = structlog.get_logger("shop.events.relay")
BATCH_SIZE = 200

Sender = Callable[[bus.Subscriber, dict], None]


def send_via_celery(sub: bus.Subscriber, wire: dict) -> None:
    from shop.events.tasks import deliver

    deliver.apply_async(
        args=[sub.consumer, wire],
        queue=sub.queue,
        headers={CORRELATION_HEADER: wire.get("correlationId"), CAUSATION_HEADER: wire["id"]},
    )


def _broker_is_remote() -> bool:
    return not current_app.conf.task_always_eager


def dispatch(
    alias: str,
    *,
    ids: list | None = None,
    min_age_seconds: float | None = None,
    send: Sender | None = None,
    limit: int = BATCH_SIZE,
) -> int:
    """Deliver unsent rows of ``alias``'s outbox; returns how many rows were sent."""
    send = send or send_via_celery
    send_inside = send is send_via_celery and _broker_is_remote()
    Outbox = outbox_model(alias)
    total = 0
    while True:
        later: list[tuple[bus.Subscriber, dict]] = []
        with transaction.atomic(using=alias):
            rows = Outbox.objects.using(alias).select_for_update(skip_locked=True).filter(sent_at__isnull=True)
            if ids is not None:
                rows = rows.filter(id__in=ids)
            if min_age_seconds is not None:
                rows = rows.filter(created_at__lte=timezone.now() - timedelta(seconds=min_age_seconds))
            claimed = list(rows.order_by("created_at")[:limit])
            if not claimed:
                break
            for row in claimed:
                for sub in bus.subscribers_for(row.event_type):
                    if send_inside:
                        send(sub, row.envelope)
                    else:
                        later.append((sub, row.envelope))
            Outbox.objects.using(alias).filter(id__in=[row.id for row in claimed]).update(
                sent_at=timezone.now(), attempts=F("attempts") + 1
            )
        for sub, wire in later:
            send(sub, wire)
        total += len(claimed)
        if ids is not None or len(claimed) < limit:
            break
    return total


def dispatch_after_commit(alias: str, event_id) -> None:
    """The on-commit fast path. Failure here is logged, never raised: the sweeper retries."""
    try:
        dispatch(alias, ids=[event_id])
    except Exception as exc:  # noqa: BLE001 - the row is safe in the outbox
        logger.warning("outbox_fast_path_failed", alias=alias, event_id=str(event_id), error=str(exc))
        try:
            with transaction.atomic(using=alias):
                outbox_model(alias).objects.using(alias).filter(id=event_id).update(last_error=str(exc)[:2000])
        except Exception:  # noqa: BLE001
            pass


def sweep(min_age_seconds: float | None = None) -> dict[str, int]:
    """Send whatever the fast path missed (crash after commit, broker down)."""
    age = settings.EVENTS_SWEEP_AFTER_SECONDS if min_age_seconds is None else min_age_seconds
    sent = {}
    for alias in settings.CONTEXTS:
        sent[alias] = dispatch(alias, min_age_seconds=age)
        oldest = (
            outbox_model(alias)
            .objects.using(alias)
            .filter(sent_at__isnull=True)
            .order_by("created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        lag = (timezone.now() - oldest).total_seconds() if oldest else 0.0
        metrics.outbox_lag.labels(alias).set(lag)
        if sent[alias]:
            logger.info("outbox_swept", alias=alias, sent=sent[alias])
    return sent


def prune() -> dict[str, int]:
    """Delete sent outbox rows and old inbox rows past their retention."""
    from shop.events.store import inbox_model

    cutoff = timezone.now() - timedelta(days=settings.EVENTS_RETENTION_DAYS)
    inbox_cutoff = timezone.now() - timedelta(days=settings.EVENTS_INBOX_RETENTION_DAYS)
    pruned = {}
    for alias in settings.CONTEXTS:
        outbox_deleted, _ = outbox_model(alias).objects.using(alias).filter(sent_at__lt=cutoff).delete()
        inbox_deleted, _ = inbox_model(alias).objects.using(alias).filter(processed_at__lt=inbox_cutoff).delete()
        pruned[alias] = outbox_deleted + inbox_deleted
    return pruned
