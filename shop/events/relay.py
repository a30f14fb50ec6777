"""Moves committed outbox rows to their subscribers' queues, and keeps them owed until they arrive.

Three ways out of an outbox, one guarantee:

- **Fast path** (``send_after_commit``): right after the publishing transaction commits, the
  event is handed to the broker with no further database write. Inside a delivery task the
  sends are gathered and leave as one message per queue when the task ends
  (``batched_sends``), so a batch of replies costs one broker message, not one each.
- **Sweeper** (``sweep``, beat): looks at every row whose ``relay_after`` has passed and is
  not yet delivered. It reads the subscribers' inboxes (and dead letters): rows that arrived
  everywhere are marked delivered; the others are (re)sent to the subscribers still missing
  them, with a growing pause. "Handed to Redis" is therefore never taken for "delivered": a
  broker restart that loses messages, or a worker killed while holding one, ends in a
  re-send that the inbox absorbs if the first copy arrives after all.
- **Explicit dispatch** (``dispatch``): claims rows that no relay has sent yet; tests and
  the embedded (eager) mode use it to deliver in-process.

Rows are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``, so any number of relays can run
at once without sending a row twice. A broker send happens *before* the claiming transaction
commits its bookkeeping: a crash in between re-sends (at-least-once) instead of losing.
"""

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial

import pybreaker
import structlog
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from shop.events import broker, bus
from shop.events.store import dead_letter_model, inbox_model, outbox_model
from shop.observability import metrics
from shop.observability.celery_signals import CAUSATION_HEADER, CORRELATION_HEADER
from shop.resilience.breaker import get_breaker

logger = structlog.get_logger("shop.events.relay")
BATCH_SIZE = 200

Sender = Callable[[bus.Subscriber, dict], None]

# While the broker is failing, each commit would otherwise wait for a connection attempt
# before the web response goes out. After a few failures the fast path stands aside and the
# sweeper (which always tries) delivers; one trial call per reset period probes recovery.
# Through the kernel's door (shop.resilience), so its state is in ``circuit_breaker_open`` and the
# CircuitBreakerOpen alert, as the runbook says; a breaker of its own here reported nothing.
_fast_path_breaker = get_breaker("events-fast-path", fail_max=3, reset_timeout=10)


# --- sending ---------------------------------------------------------------------------------------


def send_deliveries(queue: str, deliveries: list[tuple[str, dict]]) -> None:
    """One broker message carrying ``[consumer, wire]`` pairs for one context's queue."""
    from shop.events.tasks import deliver

    first = deliveries[0][1]
    deliver.apply_async(
        args=[[list(pair) for pair in deliveries]],
        queue=queue,
        headers={CORRELATION_HEADER: first.get("correlationId"), CAUSATION_HEADER: first["id"]},
        # What monitoring shows of the arguments: consumers and event ids, not the envelopes'
        # data (customer details); Celery's own repr of them also cost a seventh of a publish.
        argsrepr=" ".join(f"{consumer}:{wire['id']}" for consumer, wire in deliveries)[:1024],
        kwargsrepr="{}",
        declare=broker.declare_on_publish(),
    )


def send_via_celery(sub: bus.Subscriber, wire: dict) -> None:
    """One delivery, one message (the sweeper's and tests' unit of sending)."""
    send_deliveries(sub.queue, [(sub.consumer, wire)])


class _Outgoing(threading.local):
    def __init__(self):
        self.buffer: list[tuple[str, dict]] | None = None  # (publishing alias, wire) while batching


_outgoing = _Outgoing()


Pending = list[tuple[str, dict]]  # (publishing alias, wire) of committed rows not yet sent


@contextmanager
def batched_sends(hand_to: Callable[[Pending], bool] | None = None) -> Iterator[None]:
    """Gather the fast-path sends of everything committed inside the block; send them at its end,
    one message per queue. A delivery task wraps its batch in this, so N replies are one message.

    ``hand_to``: offered the gathered sends first; when it takes them (returns True), another
    block sends them (``join_sends``), else this one does."""
    if _outgoing.buffer is not None:  # nested: the outer block sends
        yield
        return
    _outgoing.buffer = []
    try:
        yield
    finally:
        pending, _outgoing.buffer = _outgoing.buffer, None
        if pending and not (hand_to is not None and hand_to(pending)):
            _send_fast(pending)


def join_sends(pending: Pending) -> None:
    """Sends another thread gathered (``batched_sends(hand_to=...)``): they leave with this
    thread's own, at the end of its ``batched_sends`` block, or now when there is none."""
    if not pending:
        return
    if _outgoing.buffer is not None:
        _outgoing.buffer.extend(pending)
    else:
        _send_fast(pending)


def send_after_commit(alias: str, wire: dict) -> None:
    """The on-commit fast path. Failure here is logged, never raised: the sweeper re-sends."""
    if not _broker_is_remote():
        # Embedded mode: deliver in-process, claiming the row as the sweeper would.
        failure = _guarded([wire["id"]], partial(dispatch, alias, ids=[wire["id"]]))
        if failure is not None:
            _due_now(alias, [wire["id"]], failure)
        return
    if _outgoing.buffer is not None:
        _outgoing.buffer.append((alias, wire))
        return
    _send_fast([(alias, wire)])


def _send_fast(pending: Pending) -> None:
    by_queue: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    ids_by_alias: dict[str, list[str]] = defaultdict(list)
    for alias, wire in pending:
        ids_by_alias[alias].append(wire["id"])
        for sub in bus.subscribers_for(wire["type"]):
            by_queue[sub.queue].append((sub.consumer, wire))

    def send_all():
        for queue, deliveries in by_queue.items():
            send_deliveries(queue, deliveries)

    ids = [event_id for ids in ids_by_alias.values() for event_id in ids]
    failure = _guarded(ids, send_all)
    if failure is not None:
        for alias, alias_ids in ids_by_alias.items():
            _due_now(alias, alias_ids, failure)


def _guarded(ids: list, fn) -> BaseException | None:
    """Run a fast-path send under the breaker; returns why it did not happen, or None."""
    try:
        with _fast_path_breaker.calling():
            fn()
        return None
    except pybreaker.CircuitBreakerError as exc:
        logger.debug("outbox_fast_path_paused", events=len(ids))
        return exc
    except Exception as exc:  # noqa: BLE001 - the rows are safe in the outbox
        logger.warning("outbox_fast_path_failed", events=len(ids), error=str(exc))
        return exc


def _due_now(alias: str, ids: list, error: BaseException) -> None:
    """Best effort: a fast-path send did not happen, so the next sweep sends these rows at once."""
    try:
        outbox_model(alias).objects.using(alias).filter(id__in=ids, delivered_at__isnull=True).update(
            relay_after=timezone.now(), last_error=f"{type(error).__name__}: {error}"[:2000], attempts=F("attempts") + 1
        )
    except Exception:
        logger.warning("outbox_error_not_recorded", alias=alias, exc_info=True)


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


def _redeliver_pause(attempts: int) -> timedelta:
    return timedelta(seconds=min(settings.EVENTS_REDELIVER_AFTER_SECONDS * 2 ** max(attempts - 1, 0), 3600))


# --- explicit dispatch -------------------------------------------------------------------------


def dispatch(
    alias: str,
    *,
    ids: list | None = None,
    send: Sender | None = None,
    after_commit: bool | None = None,
    limit: int = BATCH_SIZE,
) -> int:
    """Send the rows of ``alias``'s outbox that no relay has sent yet; returns how many.

    ``after_commit`` chooses when ``send`` runs: False sends inside the claiming transaction
    (a crash re-sends, never loses: right for a broker); True sends after the claim commits
    (right for in-process handlers, which must not nest in the relay's transaction). It
    defaults to True for a custom ``send`` and, for Celery, to whether Celery runs eagerly.
    The rows stay owed: the sweeper confirms their arrival later.
    """
    if send is None:
        eager = not _broker_is_remote()
        send = _send_when_idle if eager else send_via_celery
        after_commit = eager if after_commit is None else after_commit
    elif after_commit is None:
        after_commit = True
    Outbox = outbox_model(alias)
    total = 0
    while True:
        later: list[tuple[bus.Subscriber, dict]] = []
        with transaction.atomic(using=alias):
            rows = Outbox.objects.using(alias).select_for_update(skip_locked=True)
            rows = rows.filter(sent_at__isnull=True, delivered_at__isnull=True)
            if ids is not None:
                rows = rows.filter(id__in=ids)
            claimed = list(rows.order_by("created_at").only("id", "event_type", "envelope")[:limit])
            if not claimed:
                break
            for row in claimed:
                for sub in bus.subscribers_for(row.event_type):
                    if after_commit:
                        later.append((sub, row.envelope))
                    else:
                        send(sub, row.envelope)
            now = timezone.now()
            Outbox.objects.using(alias).filter(id__in=[row.id for row in claimed]).update(
                sent_at=now, relay_after=now + _redeliver_pause(1), attempts=F("attempts") + 1, last_error=""
            )
        for sub, wire in later:
            send(sub, wire)
        total += len(claimed)
        if ids is not None or len(claimed) < limit:
            break
    return total


# --- the sweeper: confirm arrival, re-send what is missing ---------------------------------------


def missing_consumers(rows) -> dict:
    """For each outbox row, the subscribers (by consumer name) that have neither handled it nor
    dead-lettered it. One query per subscribing context's inbox and dead-letter table."""
    wanted: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))  # context → consumer → event ids
    for row in rows:
        for sub in bus.subscribers_for(row.event_type):
            wanted[sub.context][sub.consumer].add(row.id)
    arrived: set[tuple[str, str]] = set()
    for context, by_consumer in wanted.items():
        match = Q()
        for consumer, event_ids in by_consumer.items():
            match |= Q(consumer=consumer, event_id__in=event_ids)
        for model in (inbox_model(context), dead_letter_model(context)):
            for consumer, event_id in model.objects.using(context).filter(match).values_list("consumer", "event_id"):
                arrived.add((consumer, str(event_id)))
    return {
        row.id: [sub for sub in bus.subscribers_for(row.event_type) if (sub.consumer, str(row.id)) not in arrived]
        for row in rows
    }


def _sweep_alias(alias: str, *, min_age_seconds: float | None, limit: int, time_budget: float | None) -> dict:
    Outbox = outbox_model(alias)
    started = time.monotonic()
    outcome = {"delivered": 0, "sent": 0}
    while True:
        now = timezone.now()
        with transaction.atomic(using=alias):
            rows = Outbox.objects.using(alias).select_for_update(skip_locked=True).filter(delivered_at__isnull=True)
            if min_age_seconds is None:
                rows = rows.filter(relay_after__lte=now)
            else:
                rows = rows.filter(created_at__lte=now - timedelta(seconds=min_age_seconds))
            claimed = list(rows.order_by("relay_after").only("id", "event_type", "envelope", "attempts")[:limit])
            if not claimed:
                break
            missing = missing_consumers(claimed)
            arrived = [row.id for row in claimed if not missing[row.id]]
            if arrived:
                Outbox.objects.using(alias).filter(id__in=arrived).update(delivered_at=now, last_error="")
            by_queue: dict[str, list[tuple[str, dict]]] = defaultdict(list)
            for row in claimed:
                for sub in missing[row.id]:
                    by_queue[sub.queue].append((sub.consumer, row.envelope))
                if missing[row.id]:
                    Outbox.objects.using(alias).filter(id=row.id).update(
                        sent_at=now,
                        relay_after=now + _redeliver_pause(row.attempts + 1),
                        attempts=F("attempts") + 1,
                        last_error="not yet received by " + ", ".join(s.consumer for s in missing[row.id]),
                    )
            for queue, deliveries in by_queue.items():
                for start in range(0, len(deliveries), 50):
                    send_deliveries(queue, deliveries[start : start + 50])
        outcome["delivered"] += len(arrived)
        outcome["sent"] += len(claimed) - len(arrived)
        if len(claimed) < limit or (time_budget is not None and time.monotonic() - started > time_budget):
            break
    return outcome


def _record_error(alias: str, ids: list | None, exc: BaseException) -> None:
    """Best effort: show why rows are late in the admin (``last_error``, and ``attempts`` for the rows tried)."""
    try:
        rows = outbox_model(alias).objects.using(alias).filter(delivered_at__isnull=True)
        error = f"{type(exc).__name__}: {exc}"[:2000]
        if ids is None:
            rows.filter(relay_after__lte=timezone.now()).update(last_error=error)
        else:
            rows.filter(id__in=ids).update(last_error=error, attempts=F("attempts") + 1)
    except Exception:
        logger.warning("outbox_error_not_recorded", alias=alias, exc_info=True)


def outbox_lag(alias: str) -> float:
    """Seconds the oldest owed row is overdue: it should have arrived (or been sent) by its
    ``relay_after`` and has not. 0 when nothing is overdue."""
    oldest = (
        outbox_model(alias)
        .objects.using(alias)
        .filter(delivered_at__isnull=True)
        .order_by("relay_after")
        .values_list("relay_after", flat=True)
        .first()
    )
    return max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0


def sweep(min_age_seconds: float | None = None, *, time_budget: float | None = None) -> dict[str, int]:
    """Confirm arrivals and send whatever is owed (crash after commit, broker down or restarted).

    ``min_age_seconds`` (the ``events sweep --min-age`` command, tests) looks at every owed row at
    least that old, whatever its ``relay_after``. One failing context (its database, or the
    broker) does not stop the others. The lag itself is measured when Prometheus scrapes
    (shop.events.gauges), so it shows even when sweeps fail. Returns the rows (re)sent per context.
    """
    metrics.sweeps.inc()
    budget = settings.EVENTS_SWEEP_BUDGET_SECONDS if time_budget is None else time_budget
    sent = {}
    for alias in settings.CONTEXTS:
        try:
            outcome = _sweep_alias(alias, min_age_seconds=min_age_seconds, limit=BATCH_SIZE, time_budget=budget)
            sent[alias] = outcome["sent"]
        except Exception as exc:  # noqa: BLE001 - logged; the next sweep tries again
            sent[alias] = 0
            outcome = {}
            logger.error("outbox_sweep_failed", alias=alias, error=str(exc))
            _record_error(alias, None, exc)
        if sent[alias]:
            metrics.outbox_swept.labels(alias).inc(sent[alias])
            logger.info("outbox_swept", alias=alias, **outcome)
    return sent


PRUNE_BATCH = 5_000


def prune() -> dict[str, int]:
    """Delete delivered outbox rows and old inbox rows past their retention.

    Inbox rows are what make a redelivery a no-op, so their retention must stay far longer
    than any redelivery can arrive (broker visibility timeout, retry backoff, replays).

    In batches of ``PRUNE_BATCH``, each a statement and a commit of its own: one DELETE of a
    backlog (beat down for a day, a first run) outlived the statement timeout every hour and never
    caught up. One failing context does not stop the others (logged; the next hour tries again).
    """
    cutoff = timezone.now() - timedelta(days=settings.EVENTS_RETENTION_DAYS)
    inbox_cutoff = timezone.now() - timedelta(days=settings.EVENTS_INBOX_RETENTION_DAYS)
    pruned = {}
    for alias in settings.CONTEXTS:
        try:
            pruned[alias] = _deleted_in_batches(
                outbox_model(alias).objects.using(alias).filter(delivered_at__lt=cutoff)
            ) + _deleted_in_batches(inbox_model(alias).objects.using(alias).filter(processed_at__lt=inbox_cutoff))
        except Exception as exc:  # noqa: BLE001 - logged; the next prune tries again
            pruned[alias] = 0
            logger.error("events_prune_failed", alias=alias, error=str(exc))
    return pruned


def _deleted_in_batches(rows) -> int:
    total = 0
    while True:
        batch = list(rows.values_list("pk", flat=True)[:PRUNE_BATCH])
        if batch:
            deleted, _ = rows.model.objects.using(rows.db).filter(pk__in=batch).delete()
            total += deleted
        if len(batch) < PRUNE_BATCH:
            return total
