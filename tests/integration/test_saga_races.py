"""Races of the checkout saga with reservation expiry, found in review: each test sets up one
interleaving exactly (``drain()``-style delivery with a hook before chosen messages)."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.inventory import facade as inventory
from apps.inventory import services as inventory_services
from apps.inventory.models import Reservation, StockItem
from apps.orders import services as order_services
from apps.orders.models import Order, OrderStatus
from apps.orders.saga import orchestrator
from apps.orders.saga.models import CheckoutSaga, SagaStatus
from apps.payments.gateway import fake
from apps.payments.models import Payment
from shop.events import inbox, relay
from tests.conftest import CONTEXT_DBS
from tests.factories.orders import order_placed as place
from tests.factories.orders import stocked_products
from tests.support.events import drain
from tests.support.saga import deliver, drain_holding, expire_saga_deadlines

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


@pytest.fixture
def products():
    return stocked_products(2, price=Decimal("10.00"), on_hand=5)


def expire_all_reservations() -> int:
    return inventory_services.reservations_expire_due(now=timezone.now() + timedelta(days=1))


def drain_with_hook(before: dict):
    """Like ``drain()``, but runs ``before[type]()`` (once) right before that message is handled."""

    def send(sub, wire):
        hook = before.pop(wire["type"], None)
        if hook is not None:
            hook()
        inbox.handle(sub.consumer, wire)

    for _ in range(50):
        if not sum(relay.dispatch(alias, send=send) for alias in CONTEXT_DBS):
            return
    raise RuntimeError("did not settle")


def on_hand_reserved(product) -> tuple[int, int]:
    item = StockItem.objects.get(product_id=product.id)
    return item.on_hand, item.reserved


def test_reservation_expired_during_slow_payment_is_not_oversold(customer_api, products):
    """The reservation expires while the authorization is slow; the order is then confirmed and
    captured. Its units must still leave the shelf: before the fix the commit was skipped with a
    log, so the sold units stayed available and could be sold again."""
    order_id = place(customer_api, products)
    drain_with_hook({"payment.authorization_succeeded": expire_all_reservations})
    order = Order.objects.get(pk=order_id)
    assert order.status == OrderStatus.CONFIRMED
    assert Payment.objects.get(order_id=order_id).status == "CAPTURED"
    for product in products:
        assert on_hand_reserved(product) == (3, 0)
    assert set(Reservation.objects.filter(order_id=order_id).values_list("status", flat=True)) == {"COMMITTED"}


def test_expired_then_confirmed_then_cancelled_returns_exactly_once(customer_api, products):
    """Expiry, confirmation, then a customer cancel whose release runs before the late commit:
    the commit must not take the units again after the order was unwound."""
    order_id = place(customer_api, products)
    drain_with_hook({"payment.authorization_succeeded": expire_all_reservations})
    order = Order.objects.get(pk=order_id)
    assert order.status == OrderStatus.CONFIRMED
    for product in products:
        assert on_hand_reserved(product) == (3, 0)
    response = customer_api.post(f"/api/v1/orders/{order_id}/cancel", format="json")
    assert response.status_code == 200, response.json()
    drain()
    for product in products:
        assert on_hand_reserved(product) == (5, 0)
    assert Payment.objects.get(order_id=order_id).status == "REFUNDED"


def test_release_before_a_late_commit_of_an_expired_reservation_takes_nothing(products):
    """Saga compensation released the order (its reservation had already expired) and only then
    does ``order.confirmed`` arrive: the commit must not take units for an unwound order."""
    order_id = uuid.uuid4()
    inventory.stock_reserve(order_id=order_id, items=[inventory.StockLine(products[0].id, 2)])
    expire_all_reservations()
    assert inventory.stock_release(order_id=order_id) == 0
    with pytest.raises(inventory.ReservationNotActive):
        inventory.stock_commit(order_id=order_id)
    assert on_hand_reserved(products[0]) == (5, 0)


def test_commit_of_an_expired_reservation_without_stock_left_takes_nothing(products):
    """Someone else bought the units after expiry: the commit refuses instead of going negative."""
    order_id = uuid.uuid4()
    inventory.stock_reserve(order_id=order_id, items=[inventory.StockLine(products[0].id, 2)])
    expire_all_reservations()
    other = uuid.uuid4()
    inventory.stock_reserve(order_id=other, items=[inventory.StockLine(products[0].id, 4)])
    with pytest.raises(inventory.ReservationNotActive):
        inventory.stock_commit(order_id=order_id)
    assert on_hand_reserved(products[0]) == (5, 4)


@pytest.mark.parametrize("slow_reply", ["payment.authorization_succeeded", "payment.capture_succeeded"])
def test_slow_payment_reply_after_completion_does_not_refund(customer_api, products, slow_reply):
    """A payment step times out and is re-sent; the re-sent command's reply completes the saga,
    then the first (slow) reply arrives. It is a duplicate of a step that succeeded: before the
    fix the COMPLETED saga treated it as a late payment and refunded a fulfilled order."""
    order_id = place(customer_api, products)
    held = drain_holding(slow_reply)
    assert len(held) == 1
    expire_saga_deadlines(order_id)
    assert orchestrator.sagas_recover() == {"retried": 1}
    drain()
    assert CheckoutSaga.objects.get(order_id=order_id).status == SagaStatus.COMPLETED
    deliver(held)
    drain()
    assert Payment.objects.get(order_id=order_id).status == "CAPTURED"
    assert Order.objects.get(pk=order_id).status == OrderStatus.CONFIRMED
    assert CheckoutSaga.objects.get(order_id=order_id).status == SagaStatus.COMPLETED


def test_authorization_that_lands_after_compensation_is_voided(customer_api, products, settings):
    """The provider authorized the card but its reply waits in a backlog past the saga's timeout;
    the saga compensates and ends. The hold on the card must end voided, and the late reply must
    not revive the order. (Before a fix, logging such a late reply overflowed the step log's
    ``outcome`` column, so the handler failed every time and the hold stayed on the card.)"""
    settings.SAGA_MAX_STEP_ATTEMPTS = 1
    order_id = place(customer_api, products)
    held = drain_holding("payment.authorization_succeeded")
    assert len(held) == 1
    expire_saga_deadlines(order_id)
    assert orchestrator.sagas_recover() == {"compensating": 1}
    drain()
    assert CheckoutSaga.objects.get(order_id=order_id).status == SagaStatus.COMPENSATED
    deliver(held)  # the backlog reaches the saga at last
    drain()
    assert Payment.objects.get(order_id=order_id).status == "VOIDED"
    assert Order.objects.get(pk=order_id).status == OrderStatus.CANCELLED


def test_an_authorize_command_that_arrives_after_the_checkout_ended_charges_nothing(customer_api, products, settings):
    """The command itself waits past the timeout. The saga gives up and unwinds; not knowing what the
    command did, the reversal asks the provider with the checkout's key (which authorizes: the
    command never reached it) and voids that. By the time payments runs the command, cancelling the
    order has erased the card token: it asks the provider nothing, and nothing stays on the card."""
    settings.SAGA_MAX_STEP_ATTEMPTS = 1
    order_id = place(customer_api, products)
    held = drain_holding("checkout.payment_authorization_requested")
    assert len(held) == 1
    expire_saga_deadlines(order_id)
    assert orchestrator.sagas_recover() == {"compensating": 1}
    drain()
    assert Order.objects.get(pk=order_id).status == OrderStatus.CANCELLED
    asked = fake.call_log("authorize", f"order:{order_id}:authorize")
    assert asked["started"] == 1  # the reversal's question
    deliver(held)
    drain()
    assert fake.call_log("authorize", f"order:{order_id}:authorize") == asked  # the late command asked nothing
    [payment] = Payment.objects.filter(order_id=order_id)
    assert payment.status == "VOIDED"
    assert fake.charge_get(payment.provider_reference)["status"] == "canceled"


def test_a_step_that_times_out_after_the_customer_cancelled_unwinds_at_once_instead_of_asking_again(
    customer_api, products
):
    """The authorization command is stuck when the customer cancels. At the step's deadline the saga
    does not send the command again (the provider would authorize an order nobody wants): it unwinds,
    and the reversal asks the provider once with the checkout's key and voids what that made."""
    order_id = place(customer_api, products)
    held = drain_holding("checkout.payment_authorization_requested")
    order_services.order_cancel_request(order_id=order_id)
    drain()
    expire_saga_deadlines(order_id)
    assert orchestrator.sagas_recover() == {"compensating": 1}
    drain()
    saga = CheckoutSaga.objects.get(order_id=order_id)
    assert (saga.status, saga.step_attempts) == (SagaStatus.COMPENSATED, 1)
    asked = fake.call_log("authorize", f"order:{order_id}:authorize")
    assert asked["started"] == 1  # the reversal's question, not a second command
    deliver(held)
    drain()
    assert fake.call_log("authorize", f"order:{order_id}:authorize") == asked
    [payment] = Payment.objects.filter(order_id=order_id)
    assert payment.status == "VOIDED"
    assert fake.charge_get(payment.provider_reference)["status"] == "canceled"
    assert Order.objects.get(pk=order_id).payment_token == ""


def test_a_reversal_more_than_a_day_after_the_order_does_not_ask_the_provider_about_a_forgotten_key(
    customer_api, products, settings
):
    """The provider keeps a key's answer for 24 hours. Later, asking again with the checkout's key
    would authorize anew instead of telling what the lost request did: the reversal does not ask, and
    unwinds what is recorded (nothing here)."""
    settings.SAGA_MAX_STEP_ATTEMPTS = 1
    order_id = place(customer_api, products)
    drain_holding("checkout.payment_authorization_requested")
    Order.objects.filter(pk=order_id).update(created_at=timezone.now() - timedelta(hours=25))
    expire_saga_deadlines(order_id)
    assert orchestrator.sagas_recover() == {"compensating": 1}
    drain()
    assert fake.call_log("authorize", f"order:{order_id}:authorize")["started"] == 0
    assert not Payment.objects.filter(order_id=order_id).exists()
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.payment_token) == (OrderStatus.CANCELLED, "")
    assert CheckoutSaga.objects.get(order_id=order_id).status == SagaStatus.COMPENSATED


def test_a_cancelled_order_without_a_checkout_saga_keeps_no_card_token(customer_api, products):
    order_id = place(customer_api, products)
    drain_holding("checkout.stock_reservation_requested")
    CheckoutSaga.objects.filter(order_id=order_id).delete()
    order_services.order_cancel_request(order_id=order_id)
    drain()
    assert Order.objects.get(pk=order_id).payment_token == ""


def test_reservation_that_lands_after_compensation_is_released(customer_api, products, settings):
    settings.SAGA_MAX_STEP_ATTEMPTS = 1
    order_id = place(customer_api, products)
    held = drain_holding("checkout.stock_reservation_requested")
    expire_saga_deadlines(order_id)
    assert orchestrator.sagas_recover() == {"compensating": 1}
    drain()
    assert Order.objects.get(pk=order_id).status == OrderStatus.CANCELLED
    deliver(held)
    drain()
    for product in products:
        assert on_hand_reserved(product) == (5, 0)


def test_slow_reservation_reply_after_completion_keeps_the_sold_stock(customer_api, products):
    """The reserve step times out and is re-sent; its second reply drives the saga to the end,
    then the first (slow) reply arrives. Before the fix the finished saga took it for a late
    reservation and asked inventory to release, which put the confirmed order's committed
    units back on sale."""
    order_id = place(customer_api, products)
    held = drain_holding("inventory.stock_reserved")
    assert len(held) == 1
    expire_saga_deadlines(order_id)
    assert orchestrator.sagas_recover() == {"retried": 1}
    drain()
    assert CheckoutSaga.objects.get(order_id=order_id).status == SagaStatus.COMPLETED
    deliver(held)
    drain()
    assert Order.objects.get(pk=order_id).status == OrderStatus.CONFIRMED
    for product in products:
        assert on_hand_reserved(product) == (3, 0)


def test_recovery_skips_a_saga_that_moved_on_after_it_was_listed(customer_api, products, settings):
    """A reply (or an overlapping recovery run) may advance a saga just before a sweep reaches it.
    When sweeps listed overdue sagas and then handled them one by one, the stale entry still
    counted as a timeout: with the last attempt it compensated a healthy checkout. Sweeps now
    claim each saga with its deadline checked on the row they lock."""
    settings.SAGA_MAX_STEP_ATTEMPTS = 1
    order_id = place(customer_api, products)
    held = drain_holding("payment.authorization_succeeded")
    saga = CheckoutSaga.objects.get(order_id=order_id)
    assert saga.deadline > timezone.now()  # the step has just been (re)entered: not due
    assert orchestrator.sagas_recover() == {}  # not due: nothing claimed
    inbox.handle(*held[0])
    drain()
    assert Order.objects.get(pk=order_id).status == OrderStatus.CONFIRMED
    assert Payment.objects.get(order_id=order_id).status == "CAPTURED"


def test_staff_cannot_ship_before_the_payment_is_captured(customer_api, products, settings):
    """An order is CONFIRMED once authorized, before capture. Before the fix staff could ship it
    then; when the capture then failed (here: timed out) the saga voided the money, returned
    the shipped units to stock and got stuck on cancelling a SHIPPED order."""
    settings.SAGA_MAX_STEP_ATTEMPTS = 1
    order_id = place(customer_api, products)
    drain_holding("checkout.payment_capture_requested")
    assert Order.objects.get(pk=order_id).status == OrderStatus.CONFIRMED
    with pytest.raises(order_services.InvalidTransition):
        order_services.order_ship(order_id=order_id, tracking_number="1Z")
    expire_saga_deadlines(order_id)
    assert orchestrator.sagas_recover() == {"compensating": 1}
    drain()
    assert Order.objects.get(pk=order_id).status == OrderStatus.CANCELLED
    assert CheckoutSaga.objects.get(order_id=order_id).status == SagaStatus.COMPENSATED
    assert Payment.objects.get(order_id=order_id).status == "VOIDED"
    for product in products:
        assert on_hand_reserved(product) == (5, 0)


def test_staff_ships_once_the_checkout_completed(customer_api, products):
    order_id = place(customer_api, products)
    drain()
    shipped = order_services.order_ship(order_id=order_id, tracking_number="1Z")
    assert shipped.status == OrderStatus.SHIPPED


def test_confirmed_order_whose_expired_units_were_sold_is_refunded_and_cancelled(customer_api, products):
    """The reservation expires during a slow checkout and another order takes the units before
    ``order.confirmed`` reaches inventory: the customer gets the money back, nobody is oversold."""
    order_id = place(customer_api, products[:1])
    held = drain_holding("order.confirmed")
    assert Order.objects.get(pk=order_id).status == OrderStatus.CONFIRMED
    assert Payment.objects.get(order_id=order_id).status == "CAPTURED"
    expire_all_reservations()
    inventory.stock_reserve(order_id=uuid.uuid4(), items=[inventory.StockLine(products[0].id, 4)])
    deliver(held)
    drain()
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.cancellation_reason) == (OrderStatus.CANCELLED, "OUT_OF_STOCK")
    assert Payment.objects.get(order_id=order_id).status == "REFUNDED"
    assert CheckoutSaga.objects.get(order_id=order_id).status == SagaStatus.COMPENSATED
    assert on_hand_reserved(products[0]) == (5, 4)


def _the_fake_provider_fails_inside_the_first(operation: str, settings, monkeypatch, *, after_the_work: bool):
    """The first ``operation`` call fails inside the fake provider with a 5xx it keeps under the key and
    replays; ``after_the_work``: what it was asked to do was done first. Later calls, under other keys,
    do not fail. (The draws of the fake's fault injection: one for failing, one for the work.)"""
    settings.PAYMENT_FAKE_KEPT_FAILURE_RATE = 0.5
    settings.PAYMENT_RETRY_BASE_SECONDS = settings.PAYMENT_RETRY_MAX_SECONDS = 0.001
    monkeypatch.setattr(fake, "KEPT_FAILURE_OPERATIONS", frozenset({operation}))
    draws = iter([0.0, 0.0 if after_the_work else 0.9])
    monkeypatch.setattr(fake.random, "random", lambda: next(draws, 0.99))


def test_an_authorization_behind_a_kept_500_is_found_by_the_providers_search_and_the_checkout_completes_with_it(
    customer_api, products, settings, monkeypatch
):
    """The provider authorized, then failed inside with a 500 it replays to the checkout's key: no
    answer will ever come from that key. Its search for the order's payments finds the authorization,
    which is recorded and taken as the checkout's: the order is confirmed and captured. Before, the
    checkout failed (PAYMENT_FAILED) and the reversal voided an authorization the customer had
    been given."""
    _the_fake_provider_fails_inside_the_first("authorize", settings, monkeypatch, after_the_work=True)
    order_id = place(customer_api, products)
    drain()
    assert fake.call_log("authorize", f"order:{order_id}:authorize")["started"] == 2  # the 500, then a replay
    assert CheckoutSaga.objects.get(order_id=order_id).status == SagaStatus.COMPLETED
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.payment_token) == (OrderStatus.CONFIRMED, "")
    spent, found = Payment.objects.filter(order_id=order_id).order_by("created_at")
    assert (spent.status, spent.decline_code) == ("FAILED", "provider_key_spent")
    assert (found.status, found.captured_amount) == ("CAPTURED", order.total)
    charge = fake.charge_get(found.provider_reference)
    assert (charge["status"], charge["captured"]) == ("succeeded", order.total)
    for product in products:
        assert on_hand_reserved(product) == (3, 0)


def _the_fake_providers_search_lags(monkeypatch):
    """The fake provider's search finds nothing until the returned function is called, as Stripe's
    search finds a new PaymentIntent only once it has indexed it. Reads by id stay current."""
    indexed = []
    search = fake.FakeGateway.find_authorizations

    def search_as_indexed(self, *, order_id):
        found = search(self, order_id=order_id)  # the request is made either way (latency, faults)
        return found if indexed else []

    monkeypatch.setattr(fake.FakeGateway, "find_authorizations", search_as_indexed)
    return lambda: indexed.append(True)


def test_an_authorization_behind_a_kept_500_that_the_search_finds_only_at_the_sagas_next_ask_is_taken_then(
    customer_api, products, settings, monkeypatch
):
    """Stripe's search lags behind its records. The authorization made behind the kept 500 is not
    found at first: the checkout neither fails nor goes on, and payments sends no reply. The saga
    asks again at the step's deadline, the search finds it, and the checkout completes with it."""
    _the_fake_provider_fails_inside_the_first("authorize", settings, monkeypatch, after_the_work=True)
    index = _the_fake_providers_search_lags(monkeypatch)
    order_id = place(customer_api, products)
    drain()
    saga = CheckoutSaga.objects.get(order_id=order_id)
    assert (saga.status, saga.current_step) == (SagaStatus.STARTED, "AUTHORIZE_PAYMENT")
    assert list(Payment.objects.filter(order_id=order_id).values_list("status", flat=True)) == ["FAILED"]
    index()
    expire_saga_deadlines(order_id)
    assert orchestrator.sagas_recover() == {"retried": 1}
    drain()
    assert CheckoutSaga.objects.get(order_id=order_id).status == SagaStatus.COMPLETED
    total = Order.objects.get(pk=order_id).total
    found = Payment.objects.exclude(status="FAILED").get(order_id=order_id)
    assert (found.status, found.captured_amount) == ("CAPTURED", total)


def test_an_authorization_the_search_finds_only_after_the_checkout_gave_up_is_recorded_and_voided_by_the_reversal(
    customer_api, products, settings, monkeypatch
):
    """The search finds the authorization made behind the kept 500 only after the saga's last ask of
    the step: the checkout unwinds, and the reversal's own search records the authorization we never
    had and voids it. No money stays held on the card."""
    settings.SAGA_MAX_STEP_ATTEMPTS = 1
    _the_fake_provider_fails_inside_the_first("authorize", settings, monkeypatch, after_the_work=True)
    index = _the_fake_providers_search_lags(monkeypatch)
    order_id = place(customer_api, products)
    drain()
    assert CheckoutSaga.objects.get(order_id=order_id).current_step == "AUTHORIZE_PAYMENT"
    expire_saga_deadlines(order_id)
    orchestrator.sagas_recover()
    index()
    drain()
    saga = CheckoutSaga.objects.get(order_id=order_id)
    assert saga.status == SagaStatus.COMPENSATED
    assert not saga.log.filter(step="AUTHORIZE_PAYMENT", outcome="SUCCEEDED").exists()
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.cancellation_reason, order.payment_token) == (
        OrderStatus.CANCELLED,
        "PAYMENT_FAILED",
        "",
    )
    found = Payment.objects.exclude(status="FAILED").get(order_id=order_id)
    assert found.status == "VOIDED"
    assert found.events.get(type="AUTHORIZED").data["found"] == "provider record"
    assert fake.charge_get(found.provider_reference)["status"] == "canceled"
    for product in products:
        assert on_hand_reserved(product) == (5, 0)


def test_an_authorization_behind_a_kept_500_found_after_the_customer_cancelled_is_voided_as_the_checkout_unwinds(
    customer_api, products, settings, monkeypatch
):
    """The customer cancels while the authorization command is on its way; the provider authorizes
    and fails inside with a kept 500. The authorization its search finds reaches a saga that is
    unwinding: it is voided with the rest, and no money stays taken."""
    _the_fake_provider_fails_inside_the_first("authorize", settings, monkeypatch, after_the_work=True)
    order_id = place(customer_api, products)

    def cancel():
        assert customer_api.post(f"/api/v1/orders/{order_id}/cancel", format="json").status_code == 200

    drain_with_hook({"checkout.payment_authorization_requested": cancel})
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.cancellation_reason, order.payment_token) == (
        OrderStatus.CANCELLED, "CUSTOMER_REQUEST", "",
    )  # fmt: skip
    assert CheckoutSaga.objects.get(order_id=order_id).status == SagaStatus.COMPENSATED
    spent, found = Payment.objects.filter(order_id=order_id).order_by("created_at")
    assert (spent.status, spent.decline_code) == ("FAILED", "provider_key_spent")
    assert found.status == "VOIDED"
    assert fake.charge_get(found.provider_reference)["status"] == "canceled"
    for product in products:
        assert on_hand_reserved(product) == (5, 0)


@pytest.mark.parametrize("after_the_work", [True, False])
def test_a_capture_behind_a_kept_500_completes_the_checkout_from_the_providers_record(
    customer_api, products, settings, monkeypatch, after_the_work
):
    """The provider fails inside the checkout's capture with a 500 it replays to the capture's key. Its
    record of the payment says whether it captured (recorded so) or not (captured under a new key), and
    the checkout completes. Before, every ask of the key went unanswered until the saga gave up on
    the capture and unwound an order the customer had paid for, or was about to."""
    _the_fake_provider_fails_inside_the_first("capture", settings, monkeypatch, after_the_work=after_the_work)
    order_id = place(customer_api, products)
    drain()
    assert fake.call_log("capture", f"order:{order_id}:capture")["started"] == 2  # the 500, then a replay
    assert CheckoutSaga.objects.get(order_id=order_id).status == SagaStatus.COMPLETED
    order = Order.objects.get(pk=order_id)
    assert order.status == OrderStatus.CONFIRMED
    payment = Payment.objects.get(order_id=order_id)
    assert (payment.status, payment.captured_amount) == ("CAPTURED", order.total)
    charge = fake.charge_get(payment.provider_reference)
    assert (charge["status"], charge["captured"]) == ("succeeded", order.total)


@pytest.mark.parametrize("after_the_work", [True, False])
def test_a_refund_behind_a_kept_500_gives_the_money_back_once_as_a_cancelled_order_unwinds(
    customer_api, products, settings, monkeypatch, after_the_work
):
    """The customer cancels a completed checkout, and the provider fails inside the reversal's refund
    with a 500 it replays to the refund's key. Its record says how much it refunded: that is recorded,
    or, if nothing, the refund is made under a new key. Before, the reversal waited on the refund's
    key until the saga ended FAILED for staff, the customer's money still taken."""
    order_id = place(customer_api, products)
    drain()
    assert CheckoutSaga.objects.get(order_id=order_id).status == SagaStatus.COMPLETED
    _the_fake_provider_fails_inside_the_first("refund", settings, monkeypatch, after_the_work=after_the_work)
    response = customer_api.post(f"/api/v1/orders/{order_id}/cancel", format="json")
    assert response.status_code == 200, response.json()
    drain()
    assert fake.call_log("refund", f"order:{order_id}:refund:0.00")["started"] == 2
    assert CheckoutSaga.objects.get(order_id=order_id).status == SagaStatus.COMPENSATED
    total = Order.objects.get(pk=order_id).total
    payment = Payment.objects.get(order_id=order_id)
    assert (payment.status, payment.refunded_amount) == ("REFUNDED", total)
    assert fake.charge_get(payment.provider_reference)["refunded"] == total
    assert [e.amount for e in payment.events.filter(type="REFUNDED")] == [total]


def test_a_checkout_whose_spent_authorization_key_the_search_cannot_yet_account_for_waits_then_unwinds(
    customer_api, products, settings, monkeypatch
):
    """The provider failed inside the authorization with a kept 500 before doing anything, and its
    search finds nothing while what the key's request made may not be indexed yet. The checkout
    neither fails nor goes on: it waits for the saga's next ask, which reads the record again; once
    the provider has had time to index, nothing found means nothing was made, and the checkout
    unwinds. The key is never asked anew."""
    _the_fake_provider_fails_inside_the_first("authorize", settings, monkeypatch, after_the_work=False)
    order_id = place(customer_api, products)
    drain()
    saga = CheckoutSaga.objects.get(order_id=order_id)
    assert (saga.status, saga.current_step) == (SagaStatus.STARTED, "AUTHORIZE_PAYMENT")  # nothing found yet
    assert Order.objects.get(pk=order_id).status == OrderStatus.PENDING
    settings.PAYMENT_PROVIDER_SEARCH_LAG_SECONDS = 0
    expire_saga_deadlines(order_id)
    assert orchestrator.sagas_recover() == {"retried": 1}
    drain()
    # The 500 and its replay to the gateway's retry, then the replay to the saga's second ask: one key.
    assert fake.call_log("authorize", f"order:{order_id}:authorize")["started"] == 3
    assert CheckoutSaga.objects.get(order_id=order_id).status == SagaStatus.COMPENSATED
    assert not Payment.objects.filter(order_id=order_id).exclude(status="FAILED").exists()
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.cancellation_reason) == (OrderStatus.CANCELLED, "PAYMENT_FAILED")
    for product in products:
        assert on_hand_reserved(product) == (5, 0)


def test_a_reversal_more_than_a_day_after_the_order_voids_an_authorization_the_providers_search_finds(
    customer_api, products, settings
):
    """The lost authorization request did reach the provider, which authorized; its answer never came
    back, and the checkout is unwound more than a day later, when the provider has forgotten the key.
    The reversal asks the provider's search, not the key, and voids what it finds. Before, that
    authorization was left to lapse on the card."""
    settings.SAGA_MAX_STEP_ATTEMPTS = 1
    order_id = place(customer_api, products)
    drain_holding("checkout.payment_authorization_requested")
    made = fake.FakeGateway().authorize(
        amount=Decimal("20.00"), currency="USD", token="tok_visa", idempotency_key="the lost request",
        metadata={"order_id": str(order_id)},
    )  # fmt: skip
    Order.objects.filter(pk=order_id).update(created_at=timezone.now() - timedelta(hours=25))
    expire_saga_deadlines(order_id)
    assert orchestrator.sagas_recover() == {"compensating": 1}
    drain()
    assert fake.call_log("authorize", f"order:{order_id}:authorize")["started"] == 0
    [payment] = Payment.objects.filter(order_id=order_id)
    assert (payment.status, payment.provider_reference) == ("VOIDED", made.reference)
    assert fake.charge_get(made.reference)["status"] == "canceled"
    assert CheckoutSaga.objects.get(order_id=order_id).status == SagaStatus.COMPENSATED
