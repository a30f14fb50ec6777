"""Delivery batches sized by the load: one message when idle, many when the worker is busy.

celery-batches gathers messages for a fixed interval, then hands the batch to the pool whether
or not a pool process is free. With a short interval a busy worker queued many one-message
batches inside the pool (each paying a task's fixed cost); with a long one an idle shop waited
for nothing. ``LoadSizedBatches`` hands a batch to the pool only when a pool process can take
it: a message that finds a free process leaves at once (after ``EVENTS_BATCH_LINGER_MS``,
0 by default), and while every process is busy, arrivals gather until one returns and then
leave together (up to ``flush_every`` per batch). The natural back-pressure of the pool sets
the batch size, so batches grow exactly when the per-task cost matters.

If a batch's completion is never reported (a pool process killed mid-batch), the timer still
flushes whatever waited longer than ``STALLED_AFTER_SECONDS``: the count of batches in flight
can be wrong for a while, never stop delivery.
"""

from time import monotonic

from celery_batches import Batches, SimpleRequest
from celery_batches.trace import apply_batches_task

# While messages wait, celery-batches' timer calls ``_do_flush`` every ``flush_interval``: it
# moves due retries (messages with an ETA) and is the safety net below.
TICK_SECONDS = 0.05
STALLED_AFTER_SECONDS = 5.0


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
