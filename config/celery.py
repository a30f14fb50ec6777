"""The Celery app: settings come from Django's settings (``CELERY_*``)."""

import os

from celery import Celery, signals
from celery.fixups.django import DjangoFixup

from shop.contexts import CONTEXTS

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["shop.events", "shop.health", *(f"apps.{context}" for context in CONTEXTS), "apps.orders.saga"])


def _close_old_connections(sender=None, **kwargs) -> None:
    if not getattr(sender.request, "is_eager", False):
        from django.db import close_old_connections

        close_old_connections()


@signals.worker_init.connect(weak=False)
def keep_pooled_connections_between_tasks(**kwargs) -> None:
    """Replace the Django fix-up's per-task connection teardown with Django's request-cycle rule.

    The stock fix-up closes every database connection *and the psycopg pool* before and after
    each task under prefork, so every task opened fresh PostgreSQL connections (a backend
    started and torn down per task) and ``DB_POOL`` bought the workers nothing. Between tasks we
    do what Django does between requests instead: ``close_old_connections`` returns pooled
    connections to the pool and drops only broken or expired ones. A child process still closes
    what it inherited from the parent (the fix-up's ``worker_process_init`` is unchanged). Runs
    after the fix-up's own ``worker_init`` receiver (connected earlier), in the parent before
    the pool forks.
    """
    for fixup in app._fixups:
        if isinstance(fixup, DjangoFixup):
            worker_fixup = fixup.worker_fixup
            signals.task_prerun.disconnect(worker_fixup.on_task_prerun)
            signals.task_postrun.disconnect(worker_fixup.on_task_postrun)
    signals.task_prerun.connect(_close_old_connections, weak=False, dispatch_uid="shop-db-prerun")
    signals.task_postrun.connect(_close_old_connections, weak=False, dispatch_uid="shop-db-postrun")
