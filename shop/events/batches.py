"""Delivery batches sized by the load: one message when idle, many when the worker is busy.

celery-batches gathers messages for a fixed interval, then hands the batch to the pool whether
or not a pool process is free. With a short interval a busy worker queued many one-message
batches inside the pool (each paying a task's fixed cost); with a long one an idle shop waited
for nothing. ``LoadSizedBatches`` hands a batch to the pool only when a pool process can take
it: a message that finds a free process leaves after ``EVENTS_BATCH_LINGER_MS`` (5 ms by
default), with whatever arrived meanwhile, and while every process is busy, arrivals gather
until one returns and then leave together (up to ``flush_every`` per batch). The natural
back-pressure of the pool sets the batch size under load; the short linger gathers the
deliveries of a moderate load, where every one left alone before (session 8, ``make bench
--quick --high 24``, four runs each: 7.0 -> 2.3 tasks and 37 -> 29 ms of worker CPU per order,
COMPLETED p50 +60 ms).

If a batch's completion is never reported (a pool process killed mid-batch), the timer still
flushes whatever waited longer than ``STALLED_AFTER_SECONDS``: the count of batches in flight
can be wrong for a while, never stop delivery.
"""

from time import monotonic

from celery_batches import Batches, SimpleRequest
from celery_batches.trace import apply_batches_task

# While messages wait, celery-batches' timer calls ``_do_flush`` every ``flush_interval``: it
# moves due retries (messages with an ETA), is the safety net below, and ends a linger. With a
# linger the timer ticks at the linger itself (``flush_interval``), so a message waits for company
# about that long, not up to a whole tick: at 50 ms, a 5 ms linger cost each of a checkout's
# hops up to 50 ms (COMPLETED p50 54 -> 200 ms at 28 orders/s, session 7).
TICK_SECONDS = 0.05
STALLED_AFTER_SECONDS = 5.0


def flush_interval(linger: float) -> float:
    """The timer's period: the linger when there is one, else ``TICK_SECONDS``."""
    return min(linger, TICK_SECONDS) if linger > 0 else TICK_SECONDS


class LoadSizedBatches(Batches):
    abstract = True
    linger = 0.0  # seconds a message waits for company even when a pool process is free

    def __init__(self) -> None:
        super().__init__()
        self._in_flight = 0
        self._limit = 1
        self._waiting_since: float | None = None

    def Strategy(self, task, app, consumer):
        handle = super().Strategy(task, app, consumer)
        self._limit = max(1, int(getattr(consumer.pool, "limit", None) or 1))

        def on_message(*args, **kwargs) -> None:
            if self._waiting_since is None:
                self._waiting_since = monotonic()
            handle(*args, **kwargs)  # buffers it; starts the timer; flushes on every flush_every-th
            self._do_flush()

        return on_message

    def _do_flush(self) -> None:
        waited = monotonic() - self._waiting_since if self._waiting_since is not None else 0.0
        free = self._in_flight < self._limit
        if (free and waited >= self.linger) or waited >= max(self.linger, STALLED_AFTER_SECONDS):
            super()._do_flush()

    def flush(self, requests):
        """Runs ``requests`` in batches of at most ``flush_every``, each one pool job."""
        self._waiting_since = monotonic() if not self._pending.empty() else None
        requests = list(requests)
        for start in range(0, len(requests), self.flush_every):
            self._flush_one(requests[start : start + self.flush_every])

    def _flush_one(self, requests) -> None:
        acks_late = [r for r in requests if r.task.acks_late]
        acks_early = [r for r in requests if not r.task.acks_late]

        def on_accepted(pid: int, time_accepted: float) -> None:
            for req in acks_early:
                req.acknowledge()

        def on_done(result=None) -> None:
            for req in acks_late:
                req.acknowledge()
            self._returned()

        def on_error(exc=None) -> None:
            self._returned()

        self._in_flight += 1
        self._pool.apply_async(
            apply_batches_task,
            (self, ([SimpleRequest.from_request(r) for r in requests],), 0, None),
            accept_callback=on_accepted,
            callback=on_done,
            error_callback=on_error,
        )

    def _returned(self) -> None:
        self._in_flight = max(0, self._in_flight - 1)
        if self._waiting_since is not None or not self._buffer.empty():
            self._do_flush()
