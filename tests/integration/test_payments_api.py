import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.db.models import F
from django.test import override_settings
from rest_framework.test import APIClient

from apps.payments import facade
from apps.payments.gateway import get_gateway
from apps.payments.gateway.resilience import breaker
from apps.payments.models import IdempotencyLog, Payment
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import UserFactory
from tests.factories.orders import OrderFactory

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def staff():
    return _client(UserFactory(staff=True))


@pytest.fixture
def captured(customer):
    """A customer's order with a captured 25.00 payment (through the FakeGateway)."""
    breaker().close()
    order = OrderFactory(user_id=customer.id)
    facade.payment_authorize(
        order_id=order.id, amount=Decimal("25.00"), currency="USD", token="tok_visa", idempotency_key="a"
    )
    facade.payment_capture(order_id=order.id, idempotency_key="c")
    return Payment.objects.get(order_id=order.id)


def _refund(client, payment, key="refund-key", **body):
    return client.post(f"/api/v1/payments/{payment.id}/refund", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_owner_lists_order_payments_others_get_404(customer, captured):
    body = _client(customer).get(f"/api/v1/orders/{captured.order_id}/payments").json()
    assert body["data"][0]["status"] == "CAPTURED" and body["data"][0]["capturedAmount"] == "25.00"
    assert "providerReference" not in body["data"][0]

    response = _client(UserFactory()).get(f"/api/v1/orders/{captured.order_id}/payments")
    assert response.status_code == 404 and response.json()["error"]["code"] == "ORDER_NOT_FOUND"
    assert _client(customer).get(f"/api/v1/orders/{uuid.uuid4()}/payments").status_code == 404


def test_refund_is_staff_only(customer, captured):
    assert _refund(_client(customer), captured, amount="5.00").status_code == 403


def test_partial_then_full_refund(staff, captured):
    partial = _refund(staff, captured, key="k1", amount="10.00", reason="damaged")
    assert partial.status_code == 200
    assert partial.json()["data"]["status"] == "PARTIALLY_REFUNDED"
    assert partial.json()["data"]["refundedAmount"] == "10.00"

    full = _refund(staff, captured, key="k2")
    assert full.json()["data"]["status"] == "REFUNDED" and full.json()["data"]["refundedAmount"] == "25.00"


def test_refund_above_captured_is_409(staff, captured):
    response = _refund(staff, captured, amount="25.01")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "REFUND_EXCEEDS_CAPTURED"
    assert response.json()["error"]["details"]["refundable"] == "25.00"


def test_repeated_refund_with_the_same_key_replays_and_calls_the_provider_once(staff, captured):
    before = get_gateway().calls["refund"]
    first = _refund(staff, captured, amount="5.00")
    second = _refund(staff, captured, amount="5.00")

    assert second.json() == first.json() and second["Idempotent-Replayed"] == "true"
    assert get_gateway().calls["refund"] == before + 1
    assert Payment.objects.get(pk=captured.pk).refunded_amount == Decimal("5.00")
    assert _refund(staff, captured, amount="6.00").status_code == 422


def test_refund_accepts_the_longest_allowed_key(staff, captured):
    """Found by schemathesis: a 255-character key overflowed the payments log's key column (500)."""
    response = _refund(staff, captured, key="k" * 255, amount="1.00")

    assert response.status_code == 200
    assert _refund(staff, captured, key="k" * 255, amount="1.00")["Idempotent-Replayed"] == "true"


def test_refund_requires_an_idempotency_key(staff, captured):
    response = staff.post(f"/api/v1/payments/{captured.id}/refund", {"amount": "1.00"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "IDEMPOTENCY_KEY_REQUIRED"


@pytest.mark.parametrize("amount", ["0", "-1", "abc", "1.001"])
def test_refund_amount_validation(staff, captured, amount):
    assert _refund(staff, captured, amount=amount).status_code == 400


def test_refund_of_uncaptured_or_unknown_payment(staff, customer):
    order = OrderFactory(user_id=customer.id)
    facade.payment_authorize(
        order_id=order.id, amount=Decimal("5.00"), currency="USD", token="tok_visa", idempotency_key="z"
    )
    authorized = Payment.objects.get(order_id=order.id)
    assert _refund(staff, authorized).json()["error"]["code"] == "INVALID_STATE"
    assert _refund(staff, Payment(id=uuid.uuid4())).status_code == 404


@override_settings(PAYMENT_FAKE_FAILURE_RATE=1.0, PAYMENT_RETRY_ATTEMPTS=1)
def test_provider_down_is_503_and_the_key_stays_usable(staff, captured):
    breaker().close()
    response = _refund(staff, captured, amount="1.00")
    assert response.status_code == 503 and response.json()["error"]["code"] == "PAYMENT_PROVIDER_UNAVAILABLE"
    breaker().close()
    with override_settings(PAYMENT_FAKE_FAILURE_RATE=0.0):
        assert _refund(staff, captured, amount="1.00").status_code == 200


def _days_pass(hours: float) -> None:
    """Every idempotency record of the payments database ``hours`` older (the HTTP layer's and the log's)."""
    IdempotencyLog.objects.update(expires_at=F("expires_at") - timedelta(hours=hours))


def test_a_refund_key_reused_after_a_day_replays_its_refund_and_is_new_only_once_the_log_forgets_it(staff, captured):
    """The HTTP layer remembered a refund's key for a day, the payments log the refund made under it for
    a week. Reused in between, the key was taken for a new refund and met the log's record of the
    first: 200 "Refunded" with nothing refunded (a staff action recorded all the same), or 400 for
    another amount. Now both remember it as long: a reuse within the week replays the first response
    (another body is 422, the key's reuse), and after it the key is a new request."""
    first = _refund(staff, captured, amount="5.00")
    assert first.status_code == 200
    actions = LogEntry.objects.count()

    _days_pass(25)
    again = _refund(staff, captured, amount="5.00")
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert LogEntry.objects.count() == actions
    assert _refund(staff, captured, amount="6.00").status_code == 422
    assert Payment.objects.get(pk=captured.pk).refunded_amount == Decimal("5.00")

    _days_pass(7 * 24)  # both forgotten: the key is a new request (what the provider keeps is its own)
    later = _refund(staff, captured, amount="5.00")
    assert later.status_code == 200 and "Idempotent-Replayed" not in later
