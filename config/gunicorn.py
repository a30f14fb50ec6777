"""gunicorn hooks: the master and its workers are one Prometheus multiprocess group.

``/metrics`` (operators only, shop.health.access) is answered by whichever worker takes the
request and aggregates ``PROMETHEUS_MULTIPROC_DIR``, which the master empties at start.
"""

from shop.observability import metrics


def on_starting(server):
    metrics.prepare_multiprocess_dir()


def child_exit(server, worker):
    metrics.mark_process_dead(worker.pid)
