"""The checkout saga, driven deterministically: events are delivered in-process with
``drain()`` (the real outbox, inbox and handlers on PostgreSQL; no broker), so every path and
every race can be set up exactly. The same flows run through a real worker in tests/e2e."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.utils import timezone

from apps.inventory.models import StockItem
from apps.orders.events import STOCK_RESERVATION_REQUESTED
from apps.orders.models import Order, OrderStatus
from apps.orders.models import OutboxMessage as OrdersOutbox
from apps.orders.saga import orchestrator
from apps.orders.saga.models import CheckoutSaga, SagaStatus, SagaStep
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


def stock(product) -> StockItem:
    return StockItem.objects.get(product_id=product.id)


def saga_of(order_id) -> CheckoutSaga:
    return CheckoutSaga.objects.get(order_id=order_id)


def payments_of(order_id) -> list[Payment]:
    return list(Payment.objects.filter(order_id=order_id))


def assert_voided_and_compensated(order_id, products) -> None:
    """The authorization was voided, the saga unwound, the order cancelled and no unit is held."""
    [payment] = payments_of(order_id)
    assert payment.status == "VOIDED"
    assert saga_of(order_id).status == SagaStatus.COMPENSATED
    assert Order.objects.get(pk=order_id).status == OrderStatus.CANCELLED
    assert all(stock(p).reserved == 0 for p in products)


def compensating_after_a_lost_authorization(customer_api, products) -> uuid.UUID:
    """An order authorized at the provider whose reply was lost: its saga timed out (one
    attempt) and is now compensating, at REVERSE_PAYMENT."""
    order_id = place(customer_api, products)
    drain_holding("payment.authorization_succeeded")  # authorized at the provider, the reply lost
    expire_saga_deadlines()
    assert orchestrator.sagas_recover() == {"compensating": 1}
    return order_id


def test_happy_path_confirms_captures_and_commits(customer_api, products):
    order_id = place(customer_api, products)
    drain()
    order = Order.objects.get(pk=order_id)
    assert order.status == OrderStatus.CONFIRMED
    assert order.payment_token == ""  # the one-time token does not linger
    saga = saga_of(order_id)
    assert (saga.status, saga.current_step) == (SagaStatus.COMPLETED, SagaStep.DONE)
    [payment] = payments_of(order_id)
    assert payment.status == "CAPTURED" and payment.captured_amount == order.total
    for product in products:
        item = stock(product)
        assert (item.on_hand, item.reserved) == (3, 0)
    assert list(order.history.values_list("to_status", flat=True)) == ["PENDING", "CONFIRMED"]
    steps = list(saga.log.values_list("step", "outcome"))
    assert ("RESERVE_STOCK", "SUCCEEDED") in steps and ("CAPTURE_PAYMENT", "SUCCEEDED") in steps


def test_each_saga_delivery_writes_its_step_log_in_one_statement_in_the_order_it_happened(customer_api, products):
    inserts = []

    def count(execute, sql, params, many, context):
        if sql.startswith('INSERT INTO "orders_sagasteplog"'):
            inserts.append(sql)
        return execute(sql, params, many, context)

    with connections["orders"].execute_wrapper(count):
        order_id = place(customer_api, products)
        drain()

    steps = list(saga_of(order_id).log.values_list("step", "outcome"))
    assert steps == [
        ("RESERVE_STOCK", "SENT"),
        ("RESERVE_STOCK", "SUCCEEDED"),
        ("AUTHORIZE_PAYMENT", "SENT"),
        ("AUTHORIZE_PAYMENT", "SUCCEEDED"),
        ("CAPTURE_PAYMENT", "SENT"),
        ("CAPTURE_PAYMENT", "SUCCEEDED"),
        ("DONE", "COMPLETED"),
    ]
    assert len(inserts) == 4  # the POST, then one per reply: reserved, authorized, captured


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("tok_chargeDeclined", "PAYMENT_DECLINED"),
        ("tok_chargeDeclinedInsufficientFunds", "PAYMENT_DECLINED"),
        ("tok_chargeDeclinedProcessingError", "PAYMENT_FAILED"),
    ],
)
def test_failed_payment_releases_stock_and_cancels(customer_api, products, token, reason, settings):
    settings.PAYMENT_RETRY_BASE_SECONDS = 0.001
    settings.PAYMENT_RETRY_MAX_SECONDS = 0.002
    order_id = place(customer_api, products, token=token)
    drain()
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.cancellation_reason) == (OrderStatus.CANCELLED, reason)
    assert saga_of(order_id).status == SagaStatus.COMPENSATED
    assert all(p.status == "FAILED" for p in payments_of(order_id))
    for product in products:
        item = stock(product)
        assert (item.on_hand, item.reserved) == (5, 0)


def test_out_of_stock_cancels_without_touching_payment(customer_api, products):
    order_id = place(customer_api, products, quantity=3)
    # Someone else takes the stock between the API's availability check and the reservation.
    from apps.inventory import services as inventory_services

    inventory_services.stock_adjust(product_id=products[0].id, delta=-4, reason="DAMAGED")
    drain()
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.cancellation_reason) == (OrderStatus.CANCELLED, "OUT_OF_STOCK")
    assert payments_of(order_id) == []
    saga = saga_of(order_id)
    assert saga.status == SagaStatus.COMPENSATED
    assert saga.data["shortages"][0]["productId"] == str(products[0].id)
    assert stock(products[1]).reserved == 0


def test_customer_cancel_after_confirmation_refunds_and_returns_stock(customer_api, products):
    order_id = place(customer_api, products)
    drain()
    response = customer_api.post(f"/api/v1/orders/{order_id}/cancel", format="json")
    assert response.status_code == 200, response.json()
    drain()
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.cancellation_reason) == (OrderStatus.CANCELLED, "CUSTOMER_REQUEST")
    [payment] = payments_of(order_id)
    assert payment.status == "REFUNDED" and payment.refunded_amount == payment.captured_amount
    for product in products:
        item = stock(product)
        assert (item.on_hand, item.reserved) == (5, 0)
    assert saga_of(order_id).status == SagaStatus.COMPENSATED


def test_cancel_while_the_saga_runs_unwinds_at_the_next_reply(customer_api, products):
    order_id = place(customer_api, products)
    assert customer_api.post(f"/api/v1/orders/{order_id}/cancel", format="json").status_code == 200
    drain()
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.cancellation_reason) == (OrderStatus.CANCELLED, "CUSTOMER_REQUEST")
    assert payments_of(order_id) == []  # stopped before the payment step
    for product in products:
        assert stock(product).reserved == 0
    assert saga_of(order_id).status == SagaStatus.COMPENSATED


def test_duplicate_replies_change_nothing(customer_api, products):
    order_id = place(customer_api, products)
    delivered = []

    def deliver_twice(sub, wire):
        delivered.append((sub.consumer, wire))
        inbox.handle(sub.consumer, wire)
        assert inbox.handle(sub.consumer, wire) is False  # the inbox drops the duplicate

    for _ in range(20):
        if not sum(relay.dispatch(alias, send=deliver_twice) for alias in CONTEXT_DBS):
            break
    assert Order.objects.get(pk=order_id).status == OrderStatus.CONFIRMED
    assert len(payments_of(order_id)) == 1
    # reserve, reserved, authorize, authorized, capture, order.confirmed → commit, captured
    assert len(delivered) >= 7


def test_resent_commands_never_charge_twice(customer_api, products):
    """A timed-out step is re-sent as a new command; receivers' idempotency absorbs it."""
    order_id = place(customer_api, products)
    drain()
    saga = saga_of(order_id)
    # Pretend the replies were lost: step back and let recovery re-send the payment commands
    # (the token is put back as it would still be there while the authorization is unanswered).
    Order.objects.filter(pk=order_id).update(payment_token="tok_visa")
    for step in (SagaStep.AUTHORIZE_PAYMENT, SagaStep.CAPTURE_PAYMENT):
        CheckoutSaga.objects.filter(pk=saga.pk).update(
            status=SagaStatus.STARTED, current_step=step, step_attempts=1, deadline=timezone.now() - timedelta(1)
        )
        assert orchestrator.sagas_recover() == {"retried": 1}
        drain()
    assert len(payments_of(order_id)) == 1
    assert payments_of(order_id)[0].status == "CAPTURED"
    assert saga_of(order_id).status == SagaStatus.COMPLETED


def test_lost_payment_messages_time_out_then_compensate(customer_api, products, settings):
    settings.SAGA_MAX_STEP_ATTEMPTS = 2
    order_id = place(customer_api, products)
    drain_holding("checkout.payment_authorization_requested")
    assert saga_of(order_id).current_step == SagaStep.AUTHORIZE_PAYMENT
    expire_saga_deadlines()
    assert orchestrator.sagas_recover() == {"retried": 1}
    drain_holding("checkout.payment_authorization_requested")
    expire_saga_deadlines()
    assert orchestrator.sagas_recover() == {"compensating": 1}
    drain()
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.cancellation_reason) == (OrderStatus.CANCELLED, "PAYMENT_FAILED")
    assert saga_of(order_id).status == SagaStatus.COMPENSATED
    assert all(stock(p).reserved == 0 for p in products)


def test_late_authorization_after_compensation_is_voided(customer_api, products, settings):
    settings.SAGA_MAX_STEP_ATTEMPTS = 1
    order_id = place(customer_api, products)
    drain_holding("payment.authorization_succeeded")  # the provider answered, the reply got lost
    expire_saga_deadlines()
    assert orchestrator.sagas_recover() == {"compensating": 1}
    drain()
    [payment] = payments_of(order_id)
    assert payment.status == "VOIDED"
    assert Order.objects.get(pk=order_id).status == OrderStatus.CANCELLED
    assert all(stock(p).reserved == 0 for p in products)


def test_compensation_that_keeps_timing_out_ends_failed_and_staff_can_retry(customer_api, products, settings):
    settings.SAGA_MAX_STEP_ATTEMPTS = 1
    order_id = place(customer_api, products, token="tok_chargeDeclined")
    drain_holding("checkout.stock_release_requested")
    assert saga_of(order_id).current_step == SagaStep.RELEASE_STOCK
    expire_saga_deadlines()
    assert orchestrator.sagas_recover() == {"failed": 1}
    assert saga_of(order_id).status == SagaStatus.FAILED
    assert orchestrator.saga_admin_retry_step(order_id=order_id) == "re-sent RELEASE_STOCK"
    drain()
    assert saga_of(order_id).status == SagaStatus.COMPENSATED
    assert Order.objects.get(pk=order_id).cancellation_reason == "PAYMENT_DECLINED"


def test_staff_compensate_now_stops_a_running_checkout(customer_api, products):
    order_id = place(customer_api, products)
    drain_holding("checkout.payment_authorization_requested")
    assert orchestrator.saga_admin_compensate(order_id=order_id) == "compensating"
    drain()
    assert Order.objects.get(pk=order_id).status == OrderStatus.CANCELLED
    assert saga_of(order_id).status == SagaStatus.COMPENSATED


def test_the_saga_and_its_first_deadline_commit_with_the_order(customer_api, products):
    """No delivery is needed to start the checkout: recovery covers it from the order's commit on."""
    order_id = place(customer_api, products)  # nothing has been delivered yet

    saga = saga_of(order_id)
    assert (saga.status, saga.current_step, saga.step_attempts) == (SagaStatus.STARTED, "RESERVE_STOCK", 1)
    assert saga.deadline > timezone.now()
    commands = OrdersOutbox.objects.filter(aggregate_id=str(order_id), event_type=STOCK_RESERVATION_REQUESTED)
    assert commands.count() == 1


def test_a_reversal_during_a_provider_outage_is_re_asked_by_the_saga_not_dead_lettered(
    customer_api, products, settings
):
    """Found by the fault campaign: a void refused while the provider was down failed its delivery
    attempts within seconds (the circuit stayed open longer) and ended as a dead letter."""
    from apps.payments.gateway import fake
    from shop.events.store import dead_letter_model
    from shop.events.tasks import deliver_one

    settings.SAGA_MAX_STEP_ATTEMPTS = 1
    settings.PAYMENT_RETRY_ATTEMPTS = 1
    order_id = compensating_after_a_lost_authorization(customer_api, products)
    assert saga_of(order_id).current_step == SagaStep.REVERSE_PAYMENT
    settings.SAGA_MAX_STEP_ATTEMPTS = 2  # the compensation may be re-asked once
    fake.begin_outage(60)
    try:
        [(consumer, wire)] = drain_holding("checkout.payment_reversal_requested")
        deliver_one(consumer, wire, attempt=settings.EVENTS_MAX_ATTEMPTS)  # its last attempt, still in the outage
        assert not dead_letter_model("payments").objects.using("payments").exists()
        [payment] = payments_of(order_id)
        assert payment.status == "AUTHORIZED"
        assert (saga_of(order_id).status, saga_of(order_id).current_step) == (
            SagaStatus.COMPENSATING,
            SagaStep.REVERSE_PAYMENT,
        )
    finally:
        fake.end_outage()
    expire_saga_deadlines()
    assert orchestrator.sagas_recover() == {"retried": 1}
    drain()
    assert_voided_and_compensated(order_id, products)


def test_a_reversal_that_lands_after_the_saga_gave_up_finishes_the_compensation(customer_api, products, settings):
    """Found by the fault campaign: after a provider outage a refund arrived after the saga had
    ended FAILED (its attempts timed out); the reply was ignored, so the order stayed CONFIRMED
    while its money had been given back."""
    settings.SAGA_MAX_STEP_ATTEMPTS = 1
    order_id = compensating_after_a_lost_authorization(customer_api, products)
    held = drain_holding("checkout.payment_reversal_requested")  # the void is slow to arrive
    expire_saga_deadlines()
    assert orchestrator.sagas_recover() == {"failed": 1}
    assert saga_of(order_id).status == SagaStatus.FAILED
    deliver(held)  # the void happens after all, and its reply reaches the saga
    drain()
    assert_voided_and_compensated(order_id, products)


def test_a_compensation_that_ran_out_of_attempts_in_a_provider_outage_is_re_asked_until_the_void_lands(
    customer_api, products, settings
):
    """Found by the fault campaign at 20.9 orders/s: during a provider outage whose circuit
    breaker re-opened once, compensations used up their attempts and ended FAILED; nothing
    re-asked them, so their orders stayed CONFIRMED or authorized with nothing captured."""
    from apps.payments.gateway import fake

    settings.SAGA_MAX_STEP_ATTEMPTS = 1
    settings.PAYMENT_RETRY_ATTEMPTS = 1
    order_id = compensating_after_a_lost_authorization(customer_api, products)
    fake.begin_outage(600)
    try:
        drain()  # the void is refused by the outage and left to the saga to re-ask
        expire_saga_deadlines()
        assert orchestrator.sagas_recover() == {"failed": 1}
        assert saga_of(order_id).status == SagaStatus.FAILED
        expire_saga_deadlines()
        assert orchestrator.sagas_recover() == {"re-asked": 1}  # still in the outage
        drain()
        assert saga_of(order_id).status == SagaStatus.FAILED
    finally:
        fake.end_outage()
    expire_saga_deadlines()
    assert orchestrator.sagas_recover() == {"re-asked": 1}
    drain()
    assert_voided_and_compensated(order_id, products)
