"""End to end: HTTP in, a real Celery worker subprocess, real PostgreSQL and Redis."""

import base64
import json
import random
import time
import uuid
from contextlib import contextmanager
from decimal import Decimal

import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connections

from apps.inventory import services as inventory_services
from apps.inventory.models import InboxMessage as InventoryInbox
from apps.inventory.models import StockItem
from apps.orders.events import STOCK_RESERVATION_REQUESTED
from apps.orders.models import Order
from apps.orders.saga.models import CheckoutSaga
from apps.payments.gateway.fake import call_log
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
from tests.support.stripe_stub import stripe_stub_running
from tests.support.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)]


def _authorize_log(order_id) -> dict[str, int]:
    """The fake provider's call log for this order's authorization (its key names the order)."""
    keys = {k.split(":started")[0] for k in cache.keys("fakegw:log:authorize:*:started") if str(order_id) in k}
    assert len(keys) <= 1, keys
    return call_log("authorize", keys.pop().removeprefix("fakegw:log:authorize:")) if keys else {"started": 0}


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


def test_a_declined_card_cancels_the_order_and_puts_the_stock_back(celery_worker):
    products = stocked_products(1, price=Decimal("5.00"), on_hand=3)
    client = customer_client("declined@example.com")
    order_id = place(client, [products[0].id], token="tok_chargeDeclined")
    order = poll_status(client, order_id)
    assert (order["status"], order["cancellationReason"]) == ("CANCELLED", "PAYMENT_DECLINED")
    wait_quiescent()
    assert [p.status for p in Payment.objects.filter(order_id=order_id)] == ["FAILED"]
    assert_invariants({products[0].id: 3})


def test_stock_gone_before_the_reserve_step_cancels_the_order_out_of_stock(worker_factory):
    """The API saw stock; by the time the worker reserves, a stock count took it away."""
    products = stocked_products(1, price=Decimal("5.00"), on_hand=2)
    client = customer_client("short@example.com")
    order_id = place(client, [products[0].id], quantity=2)  # no worker yet: the saga waits in Redis
    inventory_services.stock_adjust(product_id=products[0].id, delta=-2, reason="count: shelf empty")
    worker_factory()
    order = poll_status(client, order_id)
    assert (order["status"], order["cancellationReason"]) == ("CANCELLED", "OUT_OF_STOCK")
    wait_quiescent()
    assert not Payment.objects.filter(order_id=order_id, captured_amount__gt=0).exists()
    assert StockItem.objects.get(product_id=products[0].id).reserved == 0


def test_a_cancel_while_the_saga_runs_ends_cancelled_with_nothing_charged_or_held(worker_factory):
    worker_factory(env={"PAYMENT_FAKE_LATENCY_MS": 2000})
    products = stocked_products(1, price=Decimal("5.00"), on_hand=3)
    client = customer_client("early-cancel@example.com")
    order_id = place(client, [products[0].id])
    wait_until(lambda: _authorize_log(order_id)["started"] == 1, message="the provider call to start")
    assert client.post(f"/api/v1/orders/{order_id}/cancel", format="json").status_code == 200
    assert _authorize_log(order_id)["ended"] == 0  # the cancel landed mid-saga, the authorization in flight
    wait_quiescent()
    order = client.get(f"/api/v1/orders/{order_id}").json()["data"]
    assert (order["status"], order["cancellationReason"]) == ("CANCELLED", "CUSTOMER_REQUEST")
    assert CheckoutSaga.objects.get(order_id=order_id).status == "COMPENSATED"
    assert not Payment.objects.filter(order_id=order_id, captured_amount__gt=0).exists()
    assert_invariants({products[0].id: 3})


def _payments_sessions_in_a_transaction() -> int:
    """Sessions on the payments database inside a transaction, this test's own aside."""
    with connections["payments"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%%'"
        )
        return cursor.fetchone()[0]


def test_a_slow_provider_authorization_holds_no_payments_connection_in_a_transaction(worker_factory):
    """PostgreSQL's connections are fewer than the provider calls that may wait at once: a
    connection idle in its transaction for the length of each call capped the slow-provider rate."""
    worker_factory(env={"PAYMENT_FAKE_LATENCY_MS": 2000})
    products = stocked_products(1, price=Decimal("5.00"), on_hand=3)
    client = customer_client("slow-provider@example.com")
    order_id = place(client, [products[0].id])
    wait_until(lambda: _authorize_log(order_id)["started"] == 1, message="the provider call to start")
    assert _payments_sessions_in_a_transaction() == 0
    assert _authorize_log(order_id)["ended"] == 0  # looked while the call was still waiting
    assert poll_status(client, order_id)["status"] == "CONFIRMED"
    wait_quiescent()
    assert_invariants({products[0].id: 3})


def test_a_cancel_after_confirmation_refunds_the_capture_and_restocks(celery_worker):
    products = stocked_products(1, price=Decimal("5.00"), on_hand=3)
    client = customer_client("late-cancel@example.com")
    order_id = place(client, [products[0].id])
    assert poll_status(client, order_id)["status"] == "CONFIRMED"
    wait_until(lambda: Payment.objects.filter(order_id=order_id, status="CAPTURED").exists(), message="capture")
    assert client.post(f"/api/v1/orders/{order_id}/cancel", format="json").status_code == 200
    wait_until(lambda: Payment.objects.get(order_id=order_id).status == "REFUNDED", message="refund after cancel")
    wait_quiescent()
    assert Order.objects.get(pk=order_id).cancellation_reason == "CUSTOMER_REQUEST"
    assert_invariants({products[0].id: 3})


def _worker_on_stripe(worker_factory, url: str, **env):
    """A real worker whose gateway is Stripe, the local stub at ``url`` (``env``: its payment settings)."""
    return worker_factory(
        env={"PAYMENT_GATEWAY": "stripe", "STRIPE_API_KEY": "sk_test_stub", "STRIPE_API_BASE": url, **env}
    )


@pytest.mark.slow
def test_an_authorization_stripe_finishes_after_our_client_gave_up_is_recorded_and_the_order_confirms(
    worker_factory,
):
    """The worker talks to a (local) Stripe slower than the HTTP client's timeout: each attempt is cut
    off, and the retry finds Stripe still at work (409: no answer yet). The delivery is retried until
    Stripe's answer is in, and the authorization Stripe made is the one recorded and captured.
    Before, the checkout gave up, cancelled the order and left that authorization on the card."""
    with stripe_stub_running() as (stripe, url):
        stripe.slow_seconds = 3.0
        _worker_on_stripe(
            worker_factory, url, PAYMENT_TIMEOUT_SECONDS=0.5, PAYMENT_RETRY_ATTEMPTS=2, PAYMENT_RETRY_BASE_SECONDS=0.01
        )
        products = stocked_products(1, on_hand=5)
        client = customer_client("timeouts@example.com")
        order_id = place(client, [products[0].id], quantity=2)

        def authorizations():
            return [r for r in stripe.requests if r["path"] == "/v1/payment_intents"]

        wait_until(lambda: len(authorizations()) >= 2, message="a timed-out attempt and its retry")
        stripe.slow_seconds = 0.0  # the capture answers in time; the first request still takes its 3 s
        assert poll_status(client, order_id)["status"] == "CONFIRMED"
        keys = {r["key"] for r in authorizations()}
        assert len(keys) == 1  # every attempt carried the saga's key
        [intent] = [body["id"] for status, body in stripe.answers.values() if body.get("status") == "requires_capture"]
        wait_quiescent()  # inside: the capture follows the confirmation and needs Stripe still up
    assert Payment.objects.get(order_id=order_id).provider_reference == intent
    assert Payment.objects.get(order_id=order_id).status == "CAPTURED"
    assert_invariants({products[0].id: 5})


@contextmanager
def _an_authorization_whose_only_attempt_times_out(worker_factory, email: str):
    """A real worker whose only attempt gives up after 0.5 s against Stripe (the stub) taking 3 s to
    authorize. Yields (stub, client, order id, product) once the authorization request is at Stripe;
    the void and anything after it answer in time."""
    with stripe_stub_running() as (stripe, url):
        stripe.slow_seconds = 3.0
        _worker_on_stripe(worker_factory, url, PAYMENT_TIMEOUT_SECONDS=0.5, PAYMENT_RETRY_ATTEMPTS=1)
        [product] = stocked_products(1, on_hand=5)
        client = customer_client(email)
        order_id = place(client, [product.id], quantity=2)
        wait_until(lambda: stripe.requests, message="the authorization request")
        stripe.slow_seconds = 0.0  # the authorization under way still takes its 3 s
        yield stripe, client, order_id, product


def _the_authorization_stripe_made_was_voided(stripe, order_id) -> None:
    """Once Stripe has finished the slow authorization: it was cancelled at Stripe, and recorded VOIDED."""

    def authorized():
        return [body["id"] for status, body in stripe.answers.values() if body.get("status") == "requires_capture"]

    [intent] = wait_until(authorized, message="Stripe to finish the authorization")
    voids = [r for r in stripe.requests if r["path"] == f"/v1/payment_intents/{intent}/cancel"]
    assert voids, "the authorization Stripe made is left on the card"
    payment = Payment.objects.get(order_id=order_id)
    assert (payment.status, payment.provider_reference) == ("VOIDED", intent)


@pytest.mark.slow
def test_an_authorization_made_after_our_only_attempt_timed_out_is_asked_for_and_voided_as_the_order_unwinds(
    worker_factory,
):
    """Our client gives up on its only attempt while Stripe, slower than our timeout, authorizes all the
    same. The checkout fails and unwinds; before it ends, payments asks Stripe again with the checkout's
    key (409 while Stripe still works, then its answer), records the authorization Stripe made and voids
    it. Before, the order was cancelled with that authorization left on the card: nothing recorded,
    nothing voided."""
    with _an_authorization_whose_only_attempt_times_out(worker_factory, "lost-answer@example.com") as checkout:
        stripe, client, order_id, product = checkout
        assert poll_status(client, order_id)["status"] == "CANCELLED"
        wait_quiescent()
        _the_authorization_stripe_made_was_voided(stripe, order_id)
    assert_invariants({product.id: 5})


@pytest.mark.slow
def test_a_customer_who_cancels_while_an_unanswered_authorization_runs_leaves_no_authorization_on_the_card(
    worker_factory,
):
    """The customer cancels while Stripe, slower than our only attempt's timeout, is authorizing. The
    order is cancelled at once, but the card token stays until the checkout has unwound: the reversal
    asks Stripe again with the checkout's key, records the authorization Stripe made and voids it.
    Before, the cancel erased the token, the reversal could not ask, and the authorization stayed on
    the card."""
    with _an_authorization_whose_only_attempt_times_out(worker_factory, "cancel-during-auth@example.com") as checkout:
        stripe, client, order_id, product = checkout
        assert client.post(f"/api/v1/orders/{order_id}/cancel", format="json").status_code == 200
        wait_quiescent()
        _the_authorization_stripe_made_was_voided(stripe, order_id)
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.cancellation_reason, order.payment_token) == ("CANCELLED", "CUSTOMER_REQUEST", "")
    assert_invariants({product.id: 5})


@pytest.mark.slow
def test_an_authorization_stripe_made_behind_a_500_it_replays_to_the_key_is_found_by_search_and_the_order_confirms(
    worker_factory,
):
    """Stripe makes the PaymentIntent, then fails inside with a 500 that it keeps under the checkout's
    key and replays to every later request with it. Stripe's search for the order's PaymentIntents
    finds the one it made, which is recorded and taken as the checkout's: the order is confirmed and
    captured. Before, the checkout failed and the reversal cancelled an authorization the customer
    had been given."""
    with stripe_stub_running() as (stripe, url):
        stripe.failures_inside = 1
        _worker_on_stripe(worker_factory, url, PAYMENT_RETRY_BASE_SECONDS=0.01, PAYMENT_RETRY_MAX_SECONDS=0.02)
        [product] = stocked_products(1, on_hand=5)
        client = customer_client("kept-500@example.com")
        order_id = place(client, [product.id], quantity=2)
        assert poll_status(client, order_id)["status"] == "CONFIRMED"
        wait_quiescent()
        [intent] = stripe.intents.values()
        assert intent["status"] == "succeeded", "the authorization Stripe made was not captured"
        assert any(r["path"] == "/v1/payment_intents/search" for r in stripe.requests)
        authorizations = [r for r in stripe.requests if r["path"] == "/v1/payment_intents"]
        assert {r["key"] for r in authorizations} == {f"order:{order_id}:authorize"}  # never asked anew
    assert Payment.objects.get(order_id=order_id, provider_reference=intent["id"]).status == "CAPTURED"
    assert CheckoutSaga.objects.get(order_id=order_id).status == "COMPLETED"
    assert_invariants({product.id: 5})


@pytest.mark.slow
def test_worker_killed_mid_step_still_ends_terminal_and_charges_once(worker_factory):
    """SIGKILL the worker while the provider call is in flight; a new worker (with beat) takes over."""
    env = {"PAYMENT_FAKE_LATENCY_MS": 3000, "SAGA_STEP_TIMEOUT_SECONDS": 5, "SAGA_SWEEP_SECONDS": 1}
    first = worker_factory(env=env)
    products = stocked_products(1, on_hand=5)
    client = customer_client("killed@example.com")
    order_id = place(client, [products[0].id])
    wait_until(lambda: _authorize_log(order_id)["started"] == 1, message="the provider call to start")
    first.kill()
    # The call began and never ended: the kill landed while the step was in flight.
    assert _authorize_log(order_id) == {"started": 1, "ended": 0}

    worker_factory(env=env, beat=True)
    order = poll_status(client, order_id, timeout=90)
    assert order["status"] == "CONFIRMED"  # the retried step reuses the key: the provider answers once
    wait_quiescent()
    assert Payment.objects.get(order_id=order_id).captured_amount == Order.objects.get(pk=order_id).total
    assert_invariants({products[0].id: 5})


def _held_by_a_worker(event_type: str) -> bool:
    """The broker lists a message carrying ``event_type`` as delivered to a worker and not acknowledged."""
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    for raw in broker.hvals("unacked"):
        message = json.loads(raw)[0]
        if event_type in base64.b64decode(message["body"]).decode():
            return True
    return False


@pytest.mark.slow
def test_a_worker_killed_holding_the_first_checkout_delivery_does_not_strand_the_order(worker_factory, settings):
    """The reserve command sits unacknowledged in a worker that is SIGKILLed: Redis would hand it to
    another worker only after the visibility timeout (minutes). The saga, committed with the order,
    re-sends the step at its deadline, so the order ends within deadline × attempts + one sweep."""
    step, attempts, sweep = 3, 3, 1
    settings.SAGA_STEP_TIMEOUT_SECONDS = step  # the first deadline is set by the POST, in this process
    holding = worker_factory(env={"EVENTS_BATCH_LINGER_MS": 60_000, "EVENTS_BATCH_MAX": 1000})  # holds, never runs
    products = stocked_products(1, on_hand=5)
    client = customer_client("held@example.com")
    order_id = place(client, [products[0].id])
    wait_until(lambda: _held_by_a_worker(STOCK_RESERVATION_REQUESTED), message="the worker to hold the command")
    holding.kill()
    assert _held_by_a_worker(STOCK_RESERVATION_REQUESTED)  # still owed to the dead worker
    assert not InventoryInbox.objects.using("inventory").exists()  # it never ran

    killed_at = time.monotonic()
    env = {"SAGA_STEP_TIMEOUT_SECONDS": step, "SAGA_MAX_STEP_ATTEMPTS": attempts, "SAGA_SWEEP_SECONDS": sweep}
    worker_factory(env=env, beat=True)
    order = poll_status(client, order_id, timeout=step * attempts + sweep + 30)
    assert order["status"] == "CONFIRMED"
    assert time.monotonic() - killed_at < step * attempts + sweep + 15  # worker start-up included
    wait_quiescent()
    assert_invariants({products[0].id: 5})


def test_a_broker_restart_that_loses_every_queued_message_does_not_strand_the_order(worker_factory, settings):
    """Redis restarted without persistence after the outbox had handed it the first command: before
    events stayed owed until received, that order stayed PENDING forever. Now the sweeper finds the
    command in no inbox and sends it again (the saga's own deadline is set far out, to show that the
    outbox alone closes the gap)."""
    settings.EVENTS_REDELIVER_AFTER_SECONDS = 2
    settings.SAGA_STEP_TIMEOUT_SECONDS = 600
    products = stocked_products(1, on_hand=5)
    client = customer_client("restart@example.com")
    order_id = place(client, [products[0].id])  # the fast path hands the command to Redis; no worker yet
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    assert broker.llen("inventory") == 1
    broker.flushdb()  # what a restart without persistence leaves: nothing

    worker_factory(beat=True, env={"EVENTS_REDELIVER_AFTER_SECONDS": 2, "SAGA_STEP_TIMEOUT_SECONDS": 600})
    order = poll_status(client, order_id, timeout=60)
    assert order["status"] == "CONFIRMED"
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


@pytest.mark.slow
def test_a_saga_past_its_deadline_is_recovered_while_beat_is_down(worker_factory, settings):
    """Found by the fault campaign: beat was the only scheduler of the saga sweep, so while it was
    down (killed, restarting), or its sweep task waited for a busy pool process, sagas stayed past
    their deadline for more than one sweep. Each worker pool process also sweeps, beat or not."""
    settings.SAGA_STEP_TIMEOUT_SECONDS = 2  # the first deadline is set by the POST, in this process
    products = stocked_products(1, on_hand=5)
    client = customer_client("nobeat@example.com")
    order_id = place(client, [products[0].id])  # no worker yet: the command waits in the broker
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()  # ... and the broker loses it
    worker_factory(env={"SAGA_STEP_TIMEOUT_SECONDS": 2, "SAGA_SWEEP_SECONDS": 1})  # no beat
    order = poll_status(client, order_id, timeout=60)
    assert order["status"] == "CONFIRMED"
    outcomes = list(CheckoutSaga.objects.get(order_id=order_id).log.values_list("step", "outcome"))
    assert ("RESERVE_STOCK", "TIMED_OUT_RETRYING") in outcomes
