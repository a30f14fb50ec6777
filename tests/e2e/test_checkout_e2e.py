"""End to end: HTTP in, a real Celery worker subprocess, real PostgreSQL and Redis."""

import random
import time
import uuid
from decimal import Decimal

import pytest

from apps.catalog import services as catalog_services
from apps.inventory.models import StockItem
from apps.orders.models import Order
from apps.orders.saga.models import CheckoutSaga
from apps.payments.models import Payment
from shop.events import relay
from shop.events.store import outbox_model
from tests.conftest import CONTEXT_DBS
from tests.e2e.checkout import (
    assert_invariants,
    customer_client,
    order_body,
    place,
    poll_status,
    wait_quiescent,
)
from tests.factories.orders import stocked_products
from tests.support.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)]


def test_happy_path_register_browse_order_confirmed(celery_worker):
    products = stocked_products(2, price=Decimal("12.50"), on_hand=10)
    client = customer_client("happy@example.com")
    listing = client.get("/api/v1/products?limit=5").json()
    assert listing["success"] and listing["pagination"]["total"] >= 2

    order_id = place(client, [p.id for p in products], quantity=2)
    order = poll_status(client, order_id)
    assert order["status"] == "CONFIRMED"

    # CONFIRMED comes before the capture step; the capture follows shortly.
    def captured():
        payments = client.get(f"/api/v1/orders/{order_id}/payments").json()["data"]
        return [p["status"] for p in payments] == ["CAPTURED"]

    wait_until(captured, message="the capture")
    wait_until(lambda: StockItem.objects.get(product_id=products[0].id).on_hand == 8, message="stock commit")
    assert all(StockItem.objects.get(product_id=p.id).reserved == 0 for p in products)
    history = [h.to_status for h in Order.objects.get(pk=order_id).history.all()]
    assert history == ["PENDING", "CONFIRMED"]


def test_failures_and_cancels_end_consistent(celery_worker):
    products = stocked_products(2, price=Decimal("5.00"), on_hand=3)
    pids = [p.id for p in products]
    client = customer_client("failures@example.com")

    declined = place(client, pids, token="tok_chargeDeclined")
    short = place(client, [pids[0]], quantity=3)
    assert poll_status(client, short)["status"] in ("CONFIRMED", "CANCELLED")
    too_late = place(client, [pids[1]], quantity=1)
    assert poll_status(client, declined)["cancellationReason"] == "PAYMENT_DECLINED"
    confirmed = poll_status(client, too_late)
    assert confirmed["status"] == "CONFIRMED"

    assert client.post(f"/api/v1/orders/{too_late}/cancel", format="json").status_code == 200
    wait_until(lambda: Payment.objects.get(order_id=too_late).status == "REFUNDED", message="refund after cancel")
    running = place(client, [pids[1]])
    client.post(f"/api/v1/orders/{running}/cancel", format="json")
    wait_quiescent()
    assert Order.objects.get(pk=running).cancellation_reason == "CUSTOMER_REQUEST"
    assert_invariants({pid: 3 for pid in pids})


@pytest.mark.slow
def test_provider_timeouts_past_the_retries_cancel_the_order(worker_factory):
    worker_factory(env={"PAYMENT_FAKE_LATENCY_MS": 400, "PAYMENT_TIMEOUT_SECONDS": 0.1, "PAYMENT_RETRY_ATTEMPTS": 2})
    products = stocked_products(1, on_hand=5)
    client = customer_client("timeouts@example.com")
    order_id = place(client, [products[0].id], quantity=2)
    order = poll_status(client, order_id)
    assert (order["status"], order["cancellationReason"]) == ("CANCELLED", "PAYMENT_FAILED")
    wait_quiescent()
    assert StockItem.objects.get(product_id=products[0].id).reserved == 0


@pytest.mark.slow
def test_worker_killed_mid_step_still_ends_terminal_and_charges_once(worker_factory):
    """SIGKILL the worker while the provider call is in flight; a new worker (with beat) takes over."""
    env = {"PAYMENT_FAKE_LATENCY_MS": 1500, "SAGA_STEP_TIMEOUT_SECONDS": 3, "SAGA_SWEEP_SECONDS": 1}
    first = worker_factory(env=env)
    products = stocked_products(1, on_hand=5)
    client = customer_client("killed@example.com")
    order_id = place(client, [products[0].id])
    wait_until(
        lambda: CheckoutSaga.objects.filter(order_id=order_id, current_step="AUTHORIZE_PAYMENT").exists(),
        message="the authorize step",
    )
    time.sleep(0.5)  # inside the provider's 1.5 s call
    first.kill()
    worker_factory(env=env, beat=True)
    order = poll_status(client, order_id, timeout=90)
    assert order["status"] in ("CONFIRMED", "CANCELLED")
    wait_quiescent()
    assert_invariants({products[0].id: 5})


@pytest.mark.slow
def test_randomized_500_orders_keep_money_and_stock_consistent(worker_factory):
    worker_factory(env={"PAYMENT_BREAKER_FAIL_MAX": 10_000, "PAYMENT_RETRY_BASE_SECONDS": 0.01}, concurrency=2)
    rng = random.Random(20261124)
    # Seven products with plenty of stock and one scarce one: some orders meet an empty shelf.
    products = stocked_products(7, price=Decimal("7.25"), on_hand=600)
    products += stocked_products(1, price=Decimal("3.10"), on_hand=40)
    initial = {p.id: (40 if n == 7 else 600) for n, p in enumerate(products)}
    clients = [customer_client(f"random{n}@example.com") for n in range(5)]
    tokens = (
        ["tok_visa"] * 14
        + ["tok_chargeDeclined", "tok_chargeDeclinedInsufficientFunds"]
        + ["tok_chargeDeclinedProcessingError"]
    )
    placed: list[tuple[object, uuid.UUID]] = []
    attempts = 0
    while len(placed) < 500 and attempts < 800:
        attempts += 1
        client = rng.choice(clients)
        lines = rng.sample([p.id for p in products], k=rng.randint(1, 3))
        response = client.post(
            "/api/v1/orders",
            order_body(lines, token=rng.choice(tokens), quantity=rng.randint(1, 3)),
            format="json",
        )
        if response.status_code == 409:  # the API saw the shelf empty: a correct refusal
            continue
        assert response.status_code == 201, response.json()
        order_id = uuid.UUID(response.json()["data"]["id"])
        placed.append((client, order_id))
        if rng.random() < 0.08:
            client.post(f"/api/v1/orders/{order_id}/cancel", format="json")
    # Customers cancel some confirmed orders later.
    for client, order_id in rng.sample(placed, k=min(25, len(placed))):
        client.post(f"/api/v1/orders/{order_id}/cancel", format="json")
    wait_quiescent(timeout=300)
    first = assert_invariants(initial)

    # Duplicate delivery of everything: every outbox row is sent again; the inboxes absorb it.
    for alias in CONTEXT_DBS:
        outbox_model(alias).objects.update(sent_at=None)
    for alias in CONTEXT_DBS:
        relay.dispatch(alias, limit=10_000)
    wait_quiescent(timeout=300)
    assert assert_invariants(initial) == first
    assert len(placed) == 500
    assert first.get("CONFIRMED", 0) > 50 and first.get("PAYMENT_DECLINED", 0) > 5


def test_catalog_price_change_does_not_touch_placed_orders(celery_worker):
    product = stocked_products(1, price=Decimal("9.99"), on_hand=5)[0]
    client = customer_client("snapshot@example.com")
    order_id = place(client, [product.id])
    poll_status(client, order_id)
    catalog_services.product_update(product_id=product.id, data={"price": Decimal("19.99")})
    assert Order.objects.get(pk=order_id).items.get().unit_price == Decimal("9.99")
