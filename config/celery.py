"""The Celery app: settings come from Django's settings (``CELERY_*``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(
    [
        "shop.events",
        "shop.health",
        "apps.accounts",
        "apps.catalog",
        "apps.inventory",
        "apps.orders",
        "apps.orders.saga",
        "apps.payments",
    ]
)
