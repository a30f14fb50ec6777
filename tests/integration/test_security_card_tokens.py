"""Card data hygiene (security finding 3) and the authorized-amount check (finding 7).

The card token is written once, on the order, and read by the payments context through the
orders facade: it is in no event, outbox row, dead letter or log line, and it is erased when the
checkout ends. Only provider tokens are accepted; a card number is refused before it is stored.
"""

import json
import logging
import uuid
from decimal import Decimal

import pytest

from apps.orders.models import Order, OrderStatus
from apps.payments.gateway import fake
from apps.payments.models import Payment, PaymentStatus
from shop.events.store import dead_letter_model, outbox_model
from tests.conftest import CONTEXT_DBS
from tests.factories.orders import order_payload, stocked_products
from tests.support.events import drain
from tests.support.saga import deliver, drain_holding

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)
CARD_NUMBER = "4242 4242 4242 4242"  # Luhn-valid (Stripe's test Visa)


@pytest.fixture
def products():
    return stocked_products(1, price=Decimal("10.00"), on_hand=5)


def post_order(customer_api, products, token):
    body = order_payload(products, quantity=1, payment={"method": "card", "token": token})
    return customer_api.post("/api/v1/orders", body, format="json")


def stored_text() -> str:
    """Every outbox envelope and dead letter in every context database, as text."""
    rows = []
    for alias in CONTEXT_DBS:
        rows += list(outbox_model(alias).objects.using(alias).values_list("envelope", flat=True))
        rows += list(dead_letter_model(alias).objects.using(alias).values_list("envelope", flat=True))
    return json.dumps(rows)


@pytest.mark.parametrize("card", [CARD_NUMBER, "4242-4242-4242-4242", "4242424242424242", "tok_4242424242424242"])
def test_a_card_number_sent_as_the_token_is_refused_and_never_stored_or_logged(
    customer_api, products, card, caplog, capsys
):
    caplog.set_level(logging.DEBUG)

    response = post_order(customer_api, products, card)

    assert response.status_code == 400
    body = response.json()
    assert "card number" in json.dumps(body)
    assert "4242" not in json.dumps(body)  # the error does not repeat it
    assert not Order.objects.exists()
    output = caplog.text + "".join(capsys.readouterr())
    assert "4242" not in output


@pytest.mark.parametrize(
    ("token", "accepted"),
    [
        ("tok_visa", True),
        ("pm_card_visa", True),
        ("x" * 255, False),
        ("tok_visa; DROP TABLE orders", False),
        ("visa", False),
        ("4000 0000 0000 0001", False),  # not Luhn-valid, and not a token either
    ],
)
def test_only_provider_token_formats_are_accepted(customer_api, products, token, accepted):
    response = post_order(customer_api, products, token)
    assert response.status_code == (201 if accepted else 400), response.json()


def test_the_card_token_travels_in_no_event_and_is_erased_once_the_order_is_confirmed(customer_api, products):
    order_id = post_order(customer_api, products, "tok_visa").json()["data"]["id"]
    assert "tok_visa" not in stored_text()  # not even in the saga's authorization command

    drain()

    order = Order.objects.get(pk=order_id)
    assert order.status == OrderStatus.CONFIRMED
    assert order.payment_token == ""
    assert Payment.objects.using("payments").get(order_id=order_id).status == PaymentStatus.CAPTURED
    assert "tok_visa" not in stored_text()


def test_an_order_cancelled_before_authorization_is_never_charged_and_keeps_no_card_token_once_unwound(
    customer_api, products
):
    """The token stays while the checkout unwinds (an authorization may be at the provider, and the
    reversal may have to ask it again, token and all); the saga erases it when the checkout ends."""
    order_id = post_order(customer_api, products, "tok_visa").json()["data"]["id"]
    held = drain_holding("checkout.payment_authorization_requested")
    assert customer_api.post(f"/api/v1/orders/{order_id}/cancel").status_code == 200
    assert Order.objects.get(pk=order_id).payment_token == "tok_visa"  # left to the unwinding saga

    deliver(held)  # the command arrives after the cancellation
    drain()

    order = Order.objects.get(pk=order_id)
    assert (order.status, order.payment_token) == (OrderStatus.CANCELLED, "")
    # The late command authorized (the token was still there for it), and the unwinding voided it.
    [payment] = Payment.objects.using("payments").filter(order_id=order_id)
    assert payment.status == PaymentStatus.VOIDED
    assert fake.charge_get(payment.provider_reference)["status"] == "canceled"
    assert "tok_visa" not in stored_text()


def test_a_payment_authorized_for_another_amount_than_the_order_total_is_voided_and_the_order_cancelled(
    customer_api, products
):
    order_id = post_order(customer_api, products, "tok_visa").json()["data"]["id"]
    held = drain_holding("payment.authorization_succeeded")
    assert len(held) == 1
    consumer, wire = held[0]
    assert Decimal(wire["data"]["amount"]) == Order.objects.get(pk=order_id).total
    forged = {**wire, "id": str(uuid.uuid4()), "data": {**wire["data"], "amount": "0.01"}}

    deliver([(consumer, forged)])
    drain()

    order = Order.objects.get(pk=order_id)
    assert (order.status, order.cancellation_reason) == (OrderStatus.CANCELLED, "PAYMENT_FAILED")
    assert Payment.objects.using("payments").get(order_id=order_id).status == PaymentStatus.VOIDED
