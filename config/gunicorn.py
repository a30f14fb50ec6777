"""gunicorn hooks: the master and its workers are one Prometheus multiprocess group.

``/metrics`` (operators only, shop.health.access) is answered by whichever worker takes the
request and aggregates ``PROMETHEUS_MULTIPROC_DIR``, which the master empties at start.
"""

from shop.observability import multiproc


def on_starting(server):
    multiproc.prepare()


def child_exit(server, worker):
    multiproc.mark_process_dead(worker.pid)
