import random
import threading
import time

import structlog
from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings
from django.db import close_old_connections

from apps.orders.saga import orchestrator

logger = structlog.get_logger("apps.orders.saga")


@shared_task(name="orders.sagas.recover", acks_late=True, ignore_result=True)
def sagas_recover() -> dict:
    """Beat: nudge every checkout past its deadline (lost message, killed worker, hung provider)."""
    return orchestrator.sagas_recover()


def sweep_forever(interval: float, stop: threading.Event) -> None:
    """Start a sweep every ``interval`` seconds (the first after a random share of it, so the
    processes of a host do not sweep in step) until ``stop`` is set; a failed sweep is logged,
    the next one runs. The cadence counts from each sweep's start: a sweep that took long under
    a backlog does not push the next one a full interval further out."""
    next_start = time.monotonic() + random.uniform(0, interval)  # spreading timers, not crypto
    while not stop.wait(max(0.0, next_start - time.monotonic())):
        next_start = time.monotonic() + interval
        try:
            orchestrator.sagas_recover()
        except Exception:  # a database fault must not end the sweeper
            logger.exception("saga_sweep_failed")
        finally:
            close_old_connections()


@worker_process_init.connect(weak=False)
def start_saga_sweeper(**_kwargs) -> None:
    """Each worker pool process also sweeps overdue sagas, in a thread of its own.

    Beat alone is a single scheduler: while it is down (killed, restarting) nothing sweeps, and
    its sweep is a task that waits for a free pool process, so when every process is busy (a
    database refusing connections makes each delivery wait for its pool timeout) the sweep is
    late too. The thread needs neither; a sweep is idempotent (each saga is locked and re-checked),
    so sweeps from several processes at once only cost their query.
    """
    if settings.SAGA_WORKER_SWEEP:
        threading.Thread(
            target=sweep_forever, args=(settings.SAGA_SWEEP_SECONDS, threading.Event()), daemon=True,
            name="saga-sweeper",
        ).start()  # fmt: skip
