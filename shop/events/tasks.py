"""Celery entry points of the event plumbing: thin, they call the kernel and nothing else.

``deliver`` is a batch task (``shop.events.batches``): a message that finds a pool process
free runs at once, alone; while every process is busy, arrivals gather (up to
``EVENTS_BATCH_MAX``) and run as one task when a process frees. Under load one task handles
many deliveries, and the replies they publish leave as one message per queue
(``relay.batched_sends``). Each delivery still runs in its own transaction with its own inbox
row, so batching changes the cost, never the guarantees. Messages are acknowledged after the
batch ran (``acks_late``): a worker killed mid-batch has them redelivered.

Deliveries that wait on a remote party (payments) are handed to a thread pool: a provider call
that hangs until its timeout holds one thread, not the pool process and every delivery behind
it. The batch waits for them only briefly (``EVENTS_WAITING_JOIN_MS``) after running its own:
the replies of those that finished by then leave in the batch's messages; later ones leave with
the batch the process runs when they finish, or at once when it runs none or that batch is still
handing its own over (waiting for thread slots behind a slow provider). Their messages are
acknowledged once handed over; if the process dies before one is handled, its event is still
owed (no inbox row) and the sweeper re-sends it (``EVENTS_REDELIVER_AFTER_SECONDS``), as after
a broker that lost it.
"""

import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial

import structlog
from celery import shared_task
from celery.signals import worker_process_shutdown
from django.conf import settings
from django.db import close_old_connections

from shop.events import bus, inbox, relay
from shop.events.batches import LoadSizedBatches, flush_interval
from shop.events.envelope import MalformedEnvelope
from shop.events.registry import InvalidEventData
from shop.observability import metrics

logger = structlog.get_logger("shop.events.tasks")

# Retrying cannot change these outcomes: dead-letter on the first attempt. Everything else
# (database or network trouble, a schema this process does not know yet during a rolling
# deploy, a bug fixed by the next deploy) is retried with backoff and dead-lettered after
# EVENTS_MAX_ATTEMPTS, where staff can replay it.
PERMANENT_ERRORS = (inbox.PermanentHandlerError, InvalidEventData, MalformedEnvelope)


@shared_task(
    base=LoadSizedBatches,
    name="shop.events.deliver",
    acks_late=True,
    ignore_result=True,
    flush_every=settings.EVENTS_BATCH_MAX,
    flush_interval=flush_interval(settings.EVENTS_BATCH_LINGER_MS / 1000),
    linger=settings.EVENTS_BATCH_LINGER_MS / 1000,
)
def deliver(requests) -> None:
    """Each request carries ``[[consumer, wire], ...]`` and optionally the attempt number.

    Deliveries to contexts that mostly wait on a remote party (``EVENTS_WAITING_CONTEXTS``: the
    payment provider) are handed to this process's thread pool, so a slow provider holds threads,
    not the batch (it does not wait for them); the others run one after the other in this thread.
    """
    here, waiting = [], []
    for request in requests:
        args = list(request.args) + [None] * 2
        deliveries, attempt = args[0] or [], args[1] or 1
        info = request.delivery_info or {}
        for consumer, wire in deliveries:
            job = partial(deliver_one, consumer, wire, attempt=attempt, queue=info.get("routing_key"),
                          eager=info.get("is_eager"))  # fmt: skip
            known = bus.consumer_exists(consumer)
            context = bus.subscriber_by_consumer(consumer).context if known else None
            (waiting if context in settings.EVENTS_WAITING_CONTEXTS and not info.get("is_eager") else here).append(job)
    global _running
    joined = _JoinedSends()
    with relay.batched_sends():
        try:
            handed = [hand_over(job, joined) for job in waiting]
            # Late replies join this batch from here on, not while it may still wait for thread
            # slots above (a hanging provider): they would wait with it.
            _running = joined
            for job in here:
                job()
            if handed:
                wait(handed, timeout=settings.EVENTS_WAITING_JOIN_MS / 1000)
        finally:  # whatever happened, replies handed to the batch leave with it
            relay.join_sends(joined.close())


class _JoinedSends:
    """The replies of handed-over deliveries that finish while a batch still runs: they leave in the
    batch's messages (one per queue), not one message each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = True
        self._pending: relay.Pending = []

    def offer(self, pending: relay.Pending) -> bool:
        with self._lock:
            if self._open:
                self._pending.extend(pending)
            return self._open

    def close(self) -> relay.Pending:
        with self._lock:
            self._open = False
            return self._pending


# The batch this process runs now (its last one, closed, when idle). A handed-over delivery that
# finishes after its own batch stopped waiting joins this one instead: under load a batch is
# nearly always running, so a slow provider's late replies leave together, not one message each;
# an idle process has none open, and the reply leaves at once.
_running = _JoinedSends()
_running.close()
_pool: ThreadPoolExecutor | None = None
_slots: threading.BoundedSemaphore | None = None


def _waiting_pool() -> tuple[ThreadPoolExecutor, threading.BoundedSemaphore]:
    """Created lazily, in the pool process that uses it (a prefork child never inherits threads)."""
    global _pool, _slots
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=settings.EVENTS_WAITING_THREADS, thread_name_prefix="deliver")
        _slots = threading.BoundedSemaphore(2 * settings.EVENTS_WAITING_THREADS)
    return _pool, _slots


def hand_over(job, joined: _JoinedSends) -> Future:
    """Run ``job`` in the thread pool; the batch waits for it only briefly. At most two per thread
    are running or queued: beyond that the batch waits for a free slot (back-pressure, and a
    bounded number of deliveries lost with a killed process, each still owed and re-sent by the
    sweeper)."""
    pool, slots = _waiting_pool()
    slots.acquire()
    try:
        future = pool.submit(_in_thread, job, joined)
    except BaseException:
        slots.release()
        raise
    future.add_done_callback(lambda _: slots.release())
    return future


def _in_thread(job, joined: _JoinedSends) -> None:
    """A delivery in a pool thread: its own connections, returned to the pool (or dropped if broken)
    afterwards, as between tasks; its sends join its batch's if that still waits, else those of the
    batch running now, else leave now."""
    try:
        with relay.batched_sends(hand_to=lambda pending: joined.offer(pending) or _running.offer(pending)):
            job()
    except Exception:  # deliver_one retries or parks failures itself: this is a bug, not a delivery error
        logger.exception("waiting_delivery_crashed")
    finally:
        close_old_connections()


@worker_process_shutdown.connect
def _finish_waiting_deliveries(**_kwargs) -> None:
    """Warm shutdown: the deliveries handed to threads finish (and commit) before the process exits."""
    if _pool is not None:
        _pool.shutdown(wait=True)


def deliver_one(consumer: str, wire: dict, *, attempt: int = 1, queue: str | None = None, eager: bool = False) -> None:
    """Handle one delivery; on failure schedule its retry (alone) or park it as a dead letter."""
    try:
        inbox.handle(consumer, wire)
        return
    except Exception as exc:  # noqa: BLE001 - every failure is retried or parked below
        error = exc
    known = bus.consumer_exists(consumer)
    if known:
        queue = bus.subscriber_by_consumer(consumer).queue
    permanent = isinstance(error, PERMANENT_ERRORS) or not known
    if permanent or attempt >= settings.EVENTS_MAX_ATTEMPTS:
        try:
            inbox.dead_letter(consumer, wire, error, attempt, alias=queue if queue in settings.CONTEXTS else None)
            return
        except Exception:
            logger.exception("dead_letter_failed", consumer=consumer, event_id=wire.get("id"))
            if eager:
                return  # eager retries recurse at once: there is no later to wait for
    else:
        logger.warning("delivery_failed", consumer=consumer, attempt=attempt, error=f"{type(error).__name__}: {error}")
    metrics.events_retried.labels(consumer if known else "unknown").inc()
    if eager:  # in-process: there is no broker to hold a countdown, so retry at once
        deliver_one(consumer, wire, attempt=attempt + 1, queue=queue, eager=True)
        return
    try:
        deliver.apply_async(args=[[[consumer, wire]], attempt + 1], countdown=inbox.retry_delay(attempt), queue=queue)
    except Exception:
        # Raised, it ended the batch: the deliveries after this one never ran. The event stays owed
        # (no inbox row), and the sweeper re-sends it.
        logger.warning("delivery_retry_not_sent", consumer=consumer, event_id=wire.get("id"), exc_info=True)


@shared_task(name="shop.events.sweep", acks_late=True, ignore_result=True)
def sweep() -> dict:
    return relay.sweep()


@shared_task(name="shop.events.prune", acks_late=True, ignore_result=True)
def prune() -> dict:
    return relay.prune()
