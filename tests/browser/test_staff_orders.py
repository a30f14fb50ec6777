"""Support, finance and warehouse staff find an order and act on it, in headless Chromium.

Orders are placed through the API and their checkout runs through the real outbox, inbox and
handlers (delivered by the test with ``drain``, so a step can be held back to leave a checkout
stuck); staff then work only in the browser. Each flow asserts what the page shows after each
action and what changed in the databases.
"""

import uuid
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from rest_framework.test import APIClient

from apps.inventory.models import Reservation
from apps.orders.models import Order, OrderStatus
from apps.orders.saga.models import CheckoutSaga, SagaStatus
from apps.payments.models import Payment, PaymentStatus
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import UserFactory
from tests.factories.orders import order_payload, stocked_products
from tests.support.events import drain
from tests.support.saga import drain_holding

pytestmark = pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)


def _place_order(email: str, *, price: str = "10.00", quantity: int = 2) -> Order:
    client = APIClient()
    client.force_authenticate(UserFactory(email=email))
    products = stocked_products(1, price=Decimal(price), on_hand=10)
    response = client.post("/api/v1/orders", order_payload(products, quantity=quantity), format="json")
    assert response.status_code == 201, response.content
    return Order.objects.get(pk=response.json()["data"]["id"])


@pytest.fixture
def stuck_order():
    """A checkout whose payment authorization command was lost: it waits in AUTHORIZE_PAYMENT."""
    order = _place_order("stuck.customer@example.com")
    drain_holding("checkout.payment_authorization_requested")
    return order


@pytest.fixture
def confirmed_order():
    order = _place_order("happy.customer@example.com", price="10.00", quantity=2)
    drain()
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    return order


def _confirm(browser, action: str, **fields) -> None:
    browser.click(action)
    browser.fill(fields)
    browser.submit(f"Confirm: {action}")


def test_support_finds_a_stuck_checkout_by_customer_email_and_retries_it(staff_browser, staff_member, stuck_order):
    support = staff_member("support")
    staff_browser.sign_in(support.email)
    staff_browser.open("/admin/orders/order/")
    staff_browser.search("stuck.customer@example.com")
    staff_browser.click(str(stuck_order.pk))

    assert staff_browser.text_of("#checkout-state") == "STARTED / AUTHORIZE_PAYMENT"
    assert "RESERVED" in staff_browser.text_of("#order-reservations")
    assert not staff_browser.has("input[name=_save]")  # read-only: no Save buttons
    assert staff_browser.action_links() == ["Cancel for the customer", "Retry checkout step", "Compensate checkout"]

    _confirm(staff_browser, "Retry checkout step", reason="authorization command lost")
    assert staff_browser.messages() == ["Retry checkout step: re-sent AUTHORIZE_PAYMENT"]

    drain()  # the re-sent command reaches payments; the checkout completes
    staff_browser.driver.refresh()
    staff_browser.arrived()
    assert staff_browser.text_of("#checkout-state") == "COMPLETED / DONE"
    assert "CAPTURED" in staff_browser.text_of("#order-payments")
    assert "COMMITTED" in staff_browser.text_of("#order-reservations")
    assert Order.objects.get(pk=stuck_order.pk).status == OrderStatus.CONFIRMED
    entry = LogEntry.objects.get(object_id=str(stuck_order.pk))
    assert "authorization command lost" in entry.change_message and entry.user_id == support.pk


def test_support_retries_stuck_checkouts_from_the_orders_list_with_a_reason(staff_browser, staff_member, stuck_order):
    staff_browser.sign_in(staff_member("support").email)
    staff_browser.open("/admin/orders/order/")
    staff_browser.check(str(stuck_order.pk))
    staff_browser.choose("action", "Checkout: retry the current step")
    staff_browser.click("Go")
    assert str(stuck_order.pk) in staff_browser.text_of("#bulk-selection")  # what will be acted on
    drain()
    assert Order.objects.get(pk=stuck_order.pk).status == OrderStatus.PENDING  # asked first, nothing done yet

    staff_browser.fill({"reason": "authorization commands lost at 14:00"})
    staff_browser.submit("Confirm: Retry checkout step")
    assert staff_browser.messages() == [f"Retry checkout step: {stuck_order}: re-sent AUTHORIZE_PAYMENT"]
    drain()
    assert Order.objects.get(pk=stuck_order.pk).status == OrderStatus.CONFIRMED
    assert "authorization commands lost at 14:00" in LogEntry.objects.get(object_id=str(stuck_order.pk)).change_message


def test_support_compensates_a_stuck_checkout(staff_browser, staff_member, stuck_order):
    staff_browser.sign_in(staff_member("support").email)
    staff_browser.open("/admin/orders/order/")
    staff_browser.search(str(stuck_order.pk))
    staff_browser.click(str(stuck_order.pk))

    _confirm(staff_browser, "Compensate checkout", reason="customer called, card blocked")
    assert staff_browser.messages() == ["Compensate checkout: compensating"]
    drain()
    staff_browser.driver.refresh()
    staff_browser.arrived()

    assert staff_browser.text_of("#checkout-state") == "COMPENSATED / DONE"
    assert "RELEASED" in staff_browser.text_of("#order-reservations")
    assert staff_browser.action_links() == []  # nothing left to do on a cancelled order
    assert Order.objects.get(pk=stuck_order.pk).status == OrderStatus.CANCELLED
    assert CheckoutSaga.objects.get(order_id=stuck_order.pk).status == SagaStatus.COMPENSATED


def test_warehouse_ships_and_delivers_then_finance_refunds_part_of_the_payment(
    staff_browser, staff_member, confirmed_order
):
    sku = confirmed_order.items.get().sku
    warehouse, finance = staff_member("warehouse"), staff_member("finance")

    staff_browser.sign_in(warehouse.email)
    staff_browser.open("/admin/orders/order/")
    staff_browser.click("Confirmed")  # the status filter
    staff_browser.click("Today")  # the date filter
    staff_browser.search(sku)  # the product the customer bought
    assert staff_browser.rows("#result_list") and all(
        str(confirmed_order.pk) in row for row in staff_browser.rows("#result_list")
    )
    staff_browser.click(str(confirmed_order.pk))
    assert staff_browser.action_links() == ["Ship"]  # the warehouse cannot refund
    assert sku in staff_browser.text_of("#items-group") and "CONFIRMED" in staff_browser.text_of("#history-group")
    _confirm(staff_browser, "Ship", tracking_number="TRACK-123", reason="picked and packed")
    assert staff_browser.messages() == ["Ship: shipped with tracking number TRACK-123."]
    assert "TRACK-123" in staff_browser.text
    _confirm(staff_browser, "Deliver", reason="carrier confirmed")
    assert staff_browser.messages() == ["Deliver: delivered."]
    assert Order.objects.get(pk=confirmed_order.pk).status == OrderStatus.DELIVERED

    staff_browser.sign_in(finance.email)
    staff_browser.open(f"/admin/orders/order/{confirmed_order.pk}/change/")
    assert staff_browser.action_links() == ["Refund"]  # finance: money only
    _confirm(staff_browser, "Refund", amount="5.00", reason="box arrived damaged")
    assert staff_browser.messages() == ["Refund: Refunded 5.00 USD."]
    assert "PARTIALLY_REFUNDED" in staff_browser.text_of("#order-payments")
    assert "box arrived damaged" in staff_browser.text_of("#order-payment-ledger")
    payment = Payment.objects.get(order_id=confirmed_order.pk)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, Decimal("5.00"))

    _confirm(staff_browser, "Refund", amount="100.00", reason="too much")  # refused, nothing moves
    assert "At most 20.00 can still be refunded" in staff_browser.text_of(".errornote")
    assert Payment.objects.get(order_id=confirmed_order.pk).refunded_amount == Decimal("5.00")


def test_a_warehouse_user_cannot_refund_even_by_posting_the_form(staff_member, confirmed_order):
    client = Client()
    client.force_login(staff_member("warehouse"))
    url = f"/admin/orders/order/{confirmed_order.pk}/act/refund/"
    body = {"amount": "5.00", "reason": "sneaky", "idempotency_key": uuid.uuid4().hex}

    assert client.get(url).status_code == 403
    assert client.post(url, body).status_code == 403
    assert Payment.objects.get(order_id=confirmed_order.pk).refunded_amount == Decimal("0.00")


def test_support_cancels_a_confirmed_order_for_the_customer(staff_browser, staff_member, confirmed_order):
    staff_browser.sign_in(staff_member("support").email)
    staff_browser.open("/admin/orders/order/")
    staff_browser.search("happy.customer@example.com")
    staff_browser.click(str(confirmed_order.pk))

    _confirm(staff_browser, "Cancel for the customer", reason="customer asked by phone")
    assert staff_browser.messages() == [
        "Cancel for the customer: cancelled; the checkout gives the money and the stock back."
    ]
    drain()  # the saga refunds and returns the stock
    staff_browser.driver.refresh()
    staff_browser.arrived()

    assert "REFUNDED" in staff_browser.text_of("#order-payments")
    assert "RETURNED" in staff_browser.text_of("#order-reservations")
    assert Order.objects.get(pk=confirmed_order.pk).status == OrderStatus.CANCELLED
    assert Payment.objects.get(order_id=confirmed_order.pk).status == PaymentStatus.REFUNDED
    assert set(Reservation.objects.filter(order_id=confirmed_order.pk).values_list("status", flat=True)) == {
        Reservation.Status.RETURNED
    }
