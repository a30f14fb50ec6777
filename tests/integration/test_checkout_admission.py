"""Admission control at the checkout's door: while more messages wait in the broker for a worker
than ``CHECKOUT_MAX_WAITING_MESSAGES``, a new order is refused with 503 ``CHECKOUT_BUSY`` and
``Retry-After``, and nothing of it is written; once a real worker has caught up, the same request
(same Idempotency-Key) is accepted. Without it, a web tier that takes orders faster than the
workers finish them queues every order until steps near their deadlines."""

from decimal import Decimal

import pytest

from apps.inventory.models import StockItem
from apps.orders.models import Order, OrderStatus
from shop.api.idempotency import HEADER
from shop.events import gauges
from tests.conftest import CONTEXT_DBS
from tests.factories.orders import order_payload, stocked_products
from tests.support.worker import purge_broker, wait_until

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS, transaction=True)


@pytest.fixture(autouse=True)
def _empty_broker():
    purge_broker()  # what an earlier test left waiting would count here


@pytest.fixture
def products():
    return stocked_products(2, price=Decimal("10.00"), on_hand=20)


def body(products) -> dict:
    return order_payload(products, quantity=1, payment={"method": "card", "token": "tok_visa"})


def test_a_checkout_is_refused_with_retry_after_while_messages_wait_for_a_worker_and_accepted_once_it_caught_up(
    customer_api, products, settings, worker_factory
):
    settings.CHECKOUT_MAX_WAITING_MESSAGES = 2
    settings.CHECKOUT_BACKLOG_CHECK_SECONDS = 0
    for _ in range(2):  # no worker yet: each order's first command waits in the broker
        assert customer_api.post("/api/v1/orders", body(products), format="json").status_code == 201
    assert gauges.messages_waiting() == 2
    on_hand = sorted(StockItem.objects.values_list("on_hand", "reserved"))

    refused = customer_api.post("/api/v1/orders", body(products), format="json", headers={HEADER: "retry-me"})

    assert refused.status_code == 503
    assert refused["Retry-After"] == "2"
    error = refused.json()["error"]
    assert error["code"] == "CHECKOUT_BUSY"
    assert "retry shortly" in error["message"]
    assert "limit" not in error["message"]  # the internal figures stay in the log
    assert Order.objects.count() == 2
    assert sorted(StockItem.objects.values_list("on_hand", "reserved")) == on_hand

    worker_factory()
    wait_until(
        lambda: gauges.messages_waiting() == 0 and not Order.objects.filter(status=OrderStatus.PENDING).exists(),
        message="the worker to catch up",
    )
    accepted = customer_api.post("/api/v1/orders", body(products), format="json", headers={HEADER: "retry-me"})
    assert accepted.status_code == 201, accepted.json()
    assert Order.objects.count() == 3


def test_with_admission_control_off_a_checkout_is_accepted_whatever_waits(customer_api, products, settings):
    settings.CHECKOUT_MAX_WAITING_MESSAGES = 0
    settings.CHECKOUT_BACKLOG_CHECK_SECONDS = 0
    for _ in range(3):
        assert customer_api.post("/api/v1/orders", body(products), format="json").status_code == 201
    assert gauges.messages_waiting() == 3


def test_a_backlog_that_cannot_be_counted_never_refuses_a_checkout(customer_api, products, settings):
    """The count is advisory: when the broker cannot be asked (here the count's client points at
    a port nothing listens on) it reads 0 and orders are placed; an unreachable broker is the
    outbox's business, which keeps each order's first command owed until it is back."""
    settings.CHECKOUT_MAX_WAITING_MESSAGES = 1
    settings.CHECKOUT_BACKLOG_CHECK_SECONDS = 0
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    for _ in range(2):
        assert customer_api.post("/api/v1/orders", body(products), format="json").status_code == 201
    assert gauges.messages_waiting() == 0
