"""SIGTERM (what `docker stop` and Kubernetes send) loses no in-flight delivery.

The worker's main process gets SIGTERM while a delivery is inside its handler: Celery's warm
shutdown lets it finish, commit its inbox row and acknowledge the message before exiting.
Nothing is left in the broker, so nothing is redelivered and the handler ran once.
"""

import os
import signal
import uuid

import pytest
import redis
from django.conf import settings
from django.db import transaction

from apps.orders.models import InboxMessage
from shop.events import publish
from tests.conftest import CONTEXT_DBS
from tests.support.eventprobe import control
from tests.support.eventprobe.events import PONGED
from tests.support.eventprobe.handlers import PONGED_CONSUMER
from tests.support.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)]


def test_sigterm_during_a_delivery_finishes_and_acknowledges_it_before_the_worker_exits(worker_factory):
    control.reset()
    control.set_mode(PONGED_CONSUMER, "sleep:3")
    worker = worker_factory(concurrency=1)
    with transaction.atomic(using="orders"):
        event_id = publish(PONGED, {"pingId": str(uuid.uuid4())}, aggregate_id="agg", using="orders").id
    wait_until(lambda: control.attempts(PONGED_CONSUMER, event_id) == 1, message="the handler to start")

    os.kill(worker.process.pid, signal.SIGTERM)  # the main process only, as docker stop does
    assert worker.process.wait(timeout=30) == 0

    assert InboxMessage.objects.filter(consumer=PONGED_CONSUMER, event_id=event_id).count() == 1
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    assert broker.hlen("unacked") == 0, "the in-flight message was not acknowledged"
    assert broker.llen("orders") == 0, "the in-flight message went back to the queue"
    assert control.attempts(PONGED_CONSUMER, event_id) == 1
    control.reset()
