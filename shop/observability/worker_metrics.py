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


def _queue_label(task) -> str:
    queue = (getattr(task.request, "delivery_info", None) or {}).get("routing_key") or DEFAULT_QUEUE
    return queue if queue in WORKER_QUEUES else "other"


def _on_prerun(task_id=None, **kwargs):
    _started[task_id] = time.perf_counter()


def _on_postrun(task_id=None, task=None, state=None, **kwargs):
    started = _started.pop(task_id, None)
    if task is None or task.request.is_eager:
        return
    queue = _queue_label(task)
    metrics.task_runs.labels(task.name, queue, state or "UNKNOWN").inc()
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
