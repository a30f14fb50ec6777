"""Moves committed outbox rows to subscribers' queues.

Rows are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``, so any number of relays (the
on-commit kick in every web process, the beat sweeper) can run at once without sending a
row twice. With a real broker the messages are sent *before* the rows are marked sent, in
the claiming transaction: a crash in between re-sends (at-least-once; the inbox removes
duplicates) instead of losing. In-process delivery (no broker, or tests draining the
outbox) runs handlers after the claim commits so they never nest in the relay's transaction.
"""

import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial

import pybreaker
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

# While the broker is failing, each commit would otherwise wait for a connection attempt
# before the web response goes out. After a few failures the fast path stands aside and the
# sweeper (which always tries) delivers; one trial call per reset period probes recovery.
_fast_path_breaker = pybreaker.CircuitBreaker(
    fail_max=3, reset_timeout=10, name="events-fast-path", throw_new_error_on_trip=False
)


def send_via_celery(sub: bus.Subscriber, wire: dict) -> None:
    from shop.events.tasks import deliver

    deliver.apply_async(
        args=[sub.consumer, wire],
        queue=sub.queue,
        headers={CORRELATION_HEADER: wire.get("correlationId"), CAUSATION_HEADER: wire["id"]},
    )


def _broker_is_remote() -> bool:
    return not current_app.conf.task_always_eager


def _send_when_idle(sub: bus.Subscriber, wire: dict) -> None:
    """Eager (in-process) delivery: wait until the subscriber's database has no open transaction.

    The handler must get its own transaction; if the caller still holds one on the
    subscriber's alias, the handler would become a savepoint of the caller's work and could
    be rolled back with it after the row was marked sent. ``robust``: a handler failure never
    reaches the caller (the deliver task dead-letters it).
    """
    transaction.on_commit(partial(send_via_celery, sub, wire), using=sub.context, robust=True)


def dispatch(
    alias: str,
    *,
    ids: list | None = None,
    min_age_seconds: float | None = None,
    send: Sender | None = None,
    after_commit: bool | None = None,
    limit: int = BATCH_SIZE,
    time_budget: float | None = None,
) -> int:
    """Deliver unsent rows of ``alias``'s outbox; returns how many rows were claimed and sent.

    ``after_commit`` chooses when ``send`` runs: False sends inside the claiming transaction
    (a crash re-sends, never loses: right for a broker); True sends after the claim commits
    (right for in-process handlers, which must not nest in the relay's transaction). It
    defaults to True for a custom ``send`` and, for Celery, to whether Celery runs eagerly.
    """
    if send is None:
        eager = not _broker_is_remote()
        send = _send_when_idle if eager else send_via_celery
        after_commit = eager if after_commit is None else after_commit
    elif after_commit is None:
        after_commit = True
    Outbox = outbox_model(alias)
    started = time.monotonic()
    total = 0
    while True:
        later: list[tuple[bus.Subscriber, dict]] = []
        with transaction.atomic(using=alias):
            rows = Outbox.objects.using(alias).select_for_update(skip_locked=True).filter(sent_at__isnull=True)
            if ids is not None:
                rows = rows.filter(id__in=ids)
            if min_age_seconds is not None:
                rows = rows.filter(created_at__lte=timezone.now() - timedelta(seconds=min_age_seconds))
            claimed = list(rows.order_by("created_at").only("id", "event_type", "envelope")[:limit])
            if not claimed:
                break
            for row in claimed:
                for sub in bus.subscribers_for(row.event_type):
                    if after_commit:
                        later.append((sub, row.envelope))
                    else:
                        send(sub, row.envelope)
            Outbox.objects.using(alias).filter(id__in=[row.id for row in claimed]).update(
                sent_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
            )
        for sub, wire in later:
            send(sub, wire)
        total += len(claimed)
        if ids is not None or len(claimed) < limit:
            break
        if time_budget is not None and time.monotonic() - started > time_budget:
            break
    return total


def dispatch_after_commit(alias: str, event_id) -> None:
    """The on-commit fast path. Failure here is logged, never raised: the sweeper retries."""
    if not settings.EVENTS_FAST_PATH:
        return
    try:
        with _fast_path_breaker.calling():
            dispatch(alias, ids=[event_id])
    except pybreaker.CircuitBreakerError:
        logger.debug("outbox_fast_path_paused", alias=alias, event_id=str(event_id))
    except Exception as exc:  # noqa: BLE001 - the row is safe in the outbox
        logger.warning("outbox_fast_path_failed", alias=alias, event_id=str(event_id), error=str(exc))
        _record_error(alias, [event_id], exc)


def _record_error(alias: str, ids: list | None, exc: BaseException) -> None:
    """Best effort: show why rows are late in the admin (``last_error``, and ``attempts`` for the rows tried)."""
    try:
        rows = outbox_model(alias).objects.using(alias).filter(sent_at__isnull=True)
        error = f"{type(exc).__name__}: {exc}"[:2000]
        if ids is None:
            rows.update(last_error=error)
        else:
            rows.filter(id__in=ids).update(last_error=error, attempts=F("attempts") + 1)
    except Exception:
        logger.warning("outbox_error_not_recorded", alias=alias, exc_info=True)


def outbox_lag(alias: str) -> float:
    """Seconds since the oldest unsent row was written (0 when nothing waits)."""
    oldest = (
        outbox_model(alias)
        .objects.using(alias)
        .filter(sent_at__isnull=True)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0


def sweep(min_age_seconds: float | None = None, *, time_budget: float | None = None) -> dict[str, int]:
    """Send whatever the fast path missed (crash after commit, broker down).

    One failing context (its database, or the broker) does not stop the others. The lag
    itself is measured when Prometheus scrapes (shop.events.gauges), so it shows even when
    sweeps fail.
    """
    metrics.sweeps.inc()
    age = settings.EVENTS_SWEEP_AFTER_SECONDS if min_age_seconds is None else min_age_seconds
    budget = settings.EVENTS_SWEEP_BUDGET_SECONDS if time_budget is None else time_budget
    sent = {}
    for alias in settings.CONTEXTS:
        try:
            sent[alias] = dispatch(alias, min_age_seconds=age, time_budget=budget)
        except Exception as exc:  # noqa: BLE001 - logged; the next sweep tries again
            sent[alias] = 0
            logger.error("outbox_sweep_failed", alias=alias, error=str(exc))
            _record_error(alias, None, exc)
        if sent[alias]:
            metrics.outbox_swept.labels(alias).inc(sent[alias])
            logger.info("outbox_swept", alias=alias, sent=sent[alias])
    return sent


def prune() -> dict[str, int]:
    """Delete sent outbox rows and old inbox rows past their retention.

    Inbox rows are what make a redelivery a no-op, so their retention must stay far longer
    than any redelivery can arrive (broker visibility timeout, retry backoff, replays).
    """
    from shop.events.store import inbox_model

    cutoff = timezone.now() - timedelta(days=settings.EVENTS_RETENTION_DAYS)
    inbox_cutoff = timezone.now() - timedelta(days=settings.EVENTS_INBOX_RETENTION_DAYS)
    pruned = {}
    for alias in settings.CONTEXTS:
        outbox_deleted, _ = outbox_model(alias).objects.using(alias).filter(sent_at__lt=cutoff).delete()
        inbox_deleted, _ = inbox_model(alias).objects.using(alias).filter(processed_at__lt=inbox_cutoff).delete()
        pruned[alias] = outbox_deleted + inbox_deleted
    return pruned
