"""A re-sent authorization that overtakes the first while the provider still works on it.

The checkout's authorization asks the provider before its delivery's transaction, so no claim of
ours holds a second delivery back any more: the saga's re-send (a new event, the same key) or the
sweeper's copy of the same event can reach the provider while the first call waits. The provider
refuses it (409); the delivery must then fail and be retried, never answer FAILED, which would
cancel an order the provider authorized and leave that authorization unrecorded. The real outbox,
inbox and handlers on PostgreSQL, the fake provider with latency; no broker.
"""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from apps.orders.events import PAYMENT_AUTHORIZATION_REQUESTED
from apps.orders.models import Order, OrderStatus
from apps.payments.gateway import ProviderKeyInUse, fake, get_gateway
from apps.payments.gateway.fake import call_log
from apps.payments.models import InboxMessage as PaymentsInbox
from apps.payments.models import Payment
from shop.events import inbox
from tests.conftest import CONTEXT_DBS
from tests.factories.orders import order_placed as place
from tests.factories.orders import stocked_products
from tests.support.events import drain
from tests.support.saga import drain_holding
from tests.support.worker import wait_until

pytestmark = pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)


def _handle_in_a_thread(consumer: str, wire: dict) -> threading.Thread:
    def run():
        try:
            inbox.handle(consumer, wire)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_resent_authorization_meeting_the_first_at_the_provider_is_retried_and_the_order_confirms(
    customer_api, settings
):
    settings.EVENTS_FAST_PATH = False  # the outbox holds the rows for drain()
    settings.PAYMENT_FAKE_LATENCY_MS = 2000
    products = stocked_products(1, on_hand=5)
    order_id = place(customer_api, products)
    [(consumer, first)] = drain_holding(PAYMENT_AUTHORIZATION_REQUESTED)
    key = first["data"]["idempotencyKey"]
    resent = dict(first, id=str(uuid.uuid4()))  # the saga's re-send: a new event, the same key

    waiting = _handle_in_a_thread(consumer, first)
    wait_until(lambda: call_log("authorize", key)["started"] == 1, message="the first call to reach the provider")
    with pytest.raises(ProviderKeyInUse):
        inbox.handle(consumer, resent)
    assert not PaymentsInbox.objects.filter(event_id=resent["id"]).exists()  # failed whole: retried later
    waiting.join()

    assert inbox.handle(consumer, resent)  # the retry: the provider answers the first call's result
    drain()
    assert Order.objects.get(pk=order_id).status == OrderStatus.CONFIRMED
    [payment] = Payment.objects.filter(order_id=order_id)
    assert payment.status == "CAPTURED"
    assert call_log("authorize", key) == {"started": 2, "ended": 2}


def test_a_checkout_still_running_a_day_later_is_not_asked_again_behind_a_completed_authorization(
    customer_api, settings
):
    """Stripe keeps a key's answer for at least 24 hours. Asked first after that, a provider that
    forgot the key would authorize anew, and the log (completed) would replay the old outcome:
    an authorization nobody records or voids. A day-old checkout is asked after the claim."""
    settings.EVENTS_FAST_PATH = False
    products = stocked_products(1, on_hand=5)
    order_id = place(customer_api, products)
    [(consumer, first)] = drain_holding(PAYMENT_AUTHORIZATION_REQUESTED)
    assert inbox.handle(consumer, first)  # authorized and recorded; its reply not yet delivered
    Order.objects.filter(pk=order_id).update(created_at=timezone.now() - timedelta(hours=25))
    fake.store().delete(f"fakegw:key:{first['data']['idempotencyKey']}")  # the provider forgot the key
    asked = get_gateway().calls["authorize"]

    assert inbox.handle(consumer, dict(first, id=str(uuid.uuid4())))  # the saga's re-send, a day on
    assert get_gateway().calls["authorize"] == asked  # answered from the log, the provider not asked
    assert Payment.objects.filter(order_id=order_id).count() == 1
