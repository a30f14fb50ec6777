"""The Celery app: settings come from Django's settings (``CELERY_*``)."""

import os

from celery import Celery

from shop.contexts import CONTEXTS

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["shop.events", "shop.health", *(f"apps.{context}" for context in CONTEXTS), "apps.orders.saga"])
