"""Worker-side measurement: task runs and durations by task and queue, and the ops endpoint.

A Celery worker (main process plus prefork children) is one process group: the main process
empties ``PROMETHEUS_MULTIPROC_DIR`` at start, children write their samples into it, and
the main process serves ``/metrics`` (that folder), ``/health/live`` and ``/health/ready``
on ``WORKER_OPS_PORT`` (bound to ``OPS_BIND_ADDRESS``) when the port is set.
"""

import os
import time

from celery import signals

from shop.contexts import DEFAULT_QUEUE, WORKER_QUEUES
from shop.observability import dbpool, metrics, multiproc

_started: dict[str, float] = {}


def _bounded(queue: str | None) -> str:
    queue = queue or DEFAULT_QUEUE
    return queue if queue in WORKER_QUEUES else "other"


def _batch_requests(args) -> list:
    """celery-batches runs many messages as one task: their requests are its first argument."""
    first = args[0] if args else None
    if isinstance(first, list | tuple) and all(hasattr(r, "delivery_info") for r in first):
        return list(first)
    return []


def _queue_label(task, batch: list) -> str:
    info = getattr(task.request, "delivery_info", None)
    if info:
        return _bounded(info.get("routing_key"))
    queues = {_bounded((r.delivery_info or {}).get("routing_key")) for r in batch}
    if len(queues) > 1:
        return "mixed"
    return queues.pop() if queues else DEFAULT_QUEUE


def _on_prerun(task_id=None, **kwargs):
    _started[task_id] = time.perf_counter()


def _on_postrun(task_id=None, task=None, state=None, args=None, **kwargs):
    started = _started.pop(task_id, None)
    if task is None or task.request.is_eager:
        return
    batch = _batch_requests(args)
    queue = _queue_label(task, batch)
    metrics.task_runs.labels(task.name, queue, state or "UNKNOWN").inc()
    if batch:
        metrics.task_batch_size.labels(task.name, queue).observe(len(batch))
    if started is not None:
        metrics.task_duration.labels(task.name, queue).observe(time.perf_counter() - started)
    dbpool.sample()


def _on_worker_init(**kwargs):
    multiproc.prepare()


def _on_worker_ready(**kwargs):
    port = os.environ.get("WORKER_OPS_PORT")
    if port:
        from shop.observability import ops_server

        ops_server.start(int(port), include_shared_state=False)


def _on_child_shutdown(pid=None, **kwargs):
    multiproc.mark_process_dead(pid or os.getpid())


def connect() -> None:
    signals.task_prerun.connect(_on_prerun, weak=False, dispatch_uid="shop-metrics-prerun")
    signals.task_postrun.connect(_on_postrun, weak=False, dispatch_uid="shop-metrics-postrun")
    signals.worker_init.connect(_on_worker_init, weak=False, dispatch_uid="shop-metrics-init")
    signals.worker_ready.connect(_on_worker_ready, weak=False, dispatch_uid="shop-metrics-ready")
    signals.worker_process_shutdown.connect(_on_child_shutdown, weak=False, dispatch_uid="shop-metrics-child")
