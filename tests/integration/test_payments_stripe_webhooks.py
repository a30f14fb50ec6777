"""Finding 7 (Stripe): provider-side refunds and disputes reach the ledger through a signed,
idempotent webhook; forged, tampered and replayed deliveries change nothing."""

import hashlib
import hmac
import json
import time
from decimal import Decimal

import pytest

from apps.payments.models import Payment, PaymentEvent, PaymentStatus, ProviderWebhookEvent
from shop.events.store import outbox_model
from tests.conftest import CONTEXT_DBS
from tests.factories.payments import PaymentFactory
from tests.support.events import watching

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)

URL = "/api/v1/payments/webhooks/stripe"
SECRET = "whsec_test_" + "k" * 24


@pytest.fixture(autouse=True)
def _webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET


@pytest.fixture
def payment():
    return PaymentFactory(
        provider="stripe",
        provider_reference="pi_hook_1",
        status=PaymentStatus.CAPTURED,
        captured_amount=Decimal("25.00"),
    )


def event(event_id: str, kind: str, obj: dict) -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": kind, "data": {"object": obj}}).encode()


def signature(payload: bytes, secret: str = SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def deliver(client, payload: bytes, sig: str | None):
    headers = {} if sig is None else {"HTTP_STRIPE_SIGNATURE": sig}
    return client.post(URL, payload, content_type="application/json", **headers)


def refunded(total_cents: int, reference: str = "pi_hook_1") -> dict:
    return {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": reference,
        "amount_refunded": total_cents,
        "currency": "usd",
    }


def test_forged_tampered_and_stale_deliveries_are_refused_and_change_nothing(api_client, payment):
    payload = event("evt_forged", "charge.refunded", refunded(2500))
    attempts = [
        deliver(api_client, payload, None),  # no signature
        deliver(api_client, payload, signature(payload, secret="whsec_guessed")),  # wrong secret
        deliver(api_client, payload.replace(b"2500", b"2400"), signature(payload)),  # body changed after signing
        deliver(api_client, payload, signature(payload, at=int(time.time()) - 3600)),  # replayed an hour later
    ]
    for response in attempts:
        assert response.status_code == 400, response.content
        assert response.json()["error"]["code"] == "INVALID_WEBHOOK"
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.CAPTURED, Decimal("0.00"))
    assert not ProviderWebhookEvent.objects.exists()


@pytest.fixture
def refunds_watched():
    """Nothing consumes payment.refunded yet: watched, each publish is queued where it can be counted."""
    with watching("payment.refunded", context="payments"):
        yield


@pytest.mark.usefixtures("refunds_watched")
def test_a_refund_made_at_the_provider_is_recorded_once_per_event_id(api_client, payment):
    payload = event("evt_refund_1", "charge.refunded", refunded(1000))
    first = deliver(api_client, payload, signature(payload))
    assert first.status_code == 200, first.content
    assert first.json()["data"]["outcome"] == "refunded 10.00"

    again = deliver(api_client, payload, signature(payload))  # Stripe redelivers
    assert again.json()["data"]["outcome"] == "duplicate"

    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, Decimal("10.00"))
    (ledger,) = payment.events.filter(type=PaymentEvent.Type.REFUNDED)
    assert ledger.amount == Decimal("10.00") and ledger.data == {"source": "stripe", "event": "evt_refund_1"}
    assert outbox_model("payments").objects.filter(event_type="payment.refunded").count() == 1  # published once

    # The rest refunded at the provider later: the running total brings the payment to REFUNDED.
    rest = event("evt_refund_2", "charge.refunded", refunded(2500))
    assert deliver(api_client, rest, signature(rest)).json()["data"]["outcome"] == "refunded 15.00"
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, Decimal("25.00"))


def test_a_refund_we_made_ourselves_is_not_counted_twice(api_client, payment):
    Payment.objects.filter(pk=payment.pk).update(refunded_amount=Decimal("5.00"), status="PARTIALLY_REFUNDED")
    payload = event("evt_own", "charge.refunded", refunded(500))
    assert deliver(api_client, payload, signature(payload)).json()["data"]["outcome"] == "already recorded"
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("5.00")


def test_disputes_are_recorded_in_the_ledger(api_client, payment):
    dispute = {"id": "dp_1", "object": "dispute", "payment_intent": "pi_hook_1", "amount": 2500, "currency": "usd"}
    opened = event(
        "evt_dp_1", "charge.dispute.created", {**dispute, "reason": "fraudulent", "status": "needs_response"}
    )
    closed = event("evt_dp_2", "charge.dispute.closed", {**dispute, "reason": "fraudulent", "status": "lost"})
    assert deliver(api_client, opened, signature(opened)).json()["data"]["outcome"] == "recorded DISPUTED"
    assert deliver(api_client, closed, signature(closed)).json()["data"]["outcome"] == "recorded DISPUTE_LOST"
    types = list(payment.events.values_list("type", "amount"))
    assert types == [("DISPUTED", Decimal("25.00")), ("DISPUTE_LOST", Decimal("25.00"))]
    assert payment.events.get(type="DISPUTED").data["reason"] == "fraudulent"


def test_events_about_unknown_payments_or_of_other_types_are_acknowledged_and_ignored(api_client, payment):
    stranger = event("evt_x", "charge.refunded", refunded(100, reference="pi_someone_else"))
    other = event("evt_y", "customer.created", {"id": "cus_1", "object": "customer"})
    assert deliver(api_client, stranger, signature(stranger)).json()["data"]["outcome"] == "unknown payment"
    assert deliver(api_client, other, signature(other)).json()["data"]["outcome"] == "ignored"
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("0.00")


def test_without_a_configured_secret_the_endpoint_refuses_everything(api_client, payment, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    payload = event("evt_z", "charge.refunded", refunded(2500))
    response = deliver(api_client, payload, signature(payload, secret=""))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_WEBHOOK"
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("0.00")
