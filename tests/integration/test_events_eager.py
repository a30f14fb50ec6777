"""Embedded mode (no broker, Celery eager, as in `make run`): handlers run in-process after commit.

transaction=True because the on-commit fast path is what delivers here.
"""

import pytest
from celery import current_app
from django.db import transaction

from apps.catalog.models import InboxMessage as CatalogInbox
from apps.orders.models import DeadLetter, InboxMessage, OutboxMessage
from shop.events import publish
from tests.conftest import CONTEXT_DBS
from tests.support.eventprobe import control
from tests.support.eventprobe.events import PINGED
from tests.support.eventprobe.handlers import AUDIT_CONSUMER, PINGED_CONSUMER

pytestmark = pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)


@pytest.fixture(autouse=True)
def eager_celery(settings):
    # Celery reads CELERY_TASK_ALWAYS_EAGER from the Django settings before its own overrides.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    previous = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    yield
    current_app.conf.task_always_eager = previous


def ping(note: str) -> str:
    with transaction.atomic(using="orders"):
        return publish(PINGED, {"note": note, "tier": 1}, aggregate_id="eager", using="orders").id


def test_handlers_run_in_process_once_the_publisher_commits():
    event_id = ping("eager")

    assert InboxMessage.objects.filter(consumer=PINGED_CONSUMER, event_id=event_id).count() == 1
    assert CatalogInbox.objects.using("catalog").filter(consumer=AUDIT_CONSUMER, event_id=event_id).count() == 1
    assert OutboxMessage.objects.get(id=event_id).sent_at is not None


def test_a_failing_handler_never_breaks_the_caller_and_ends_as_a_dead_letter(settings):
    settings.EVENTS_MAX_ATTEMPTS = 3
    control.set_mode(PINGED_CONSUMER, "always")

    event_id = ping("eager and broken")  # returns normally

    letter = DeadLetter.objects.get(event_id=event_id)
    assert letter.attempts == 3
    assert control.attempts(PINGED_CONSUMER, event_id) == 3
    assert CatalogInbox.objects.using("catalog").filter(event_id=event_id).count() == 1


def test_a_handler_waits_while_the_caller_holds_a_transaction_on_its_database():
    with transaction.atomic(using="catalog"):  # the audit subscriber's database is busy
        event_id = ping("nested")
        assert InboxMessage.objects.filter(event_id=event_id).count() == 1  # orders was free
        assert not CatalogInbox.objects.using("catalog").filter(event_id=event_id).exists()
    assert CatalogInbox.objects.using("catalog").filter(event_id=event_id).count() == 1
