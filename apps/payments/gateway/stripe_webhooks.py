"""Stripe's webhooks: verify the signature, then translate the event into a ``ProviderReport``.

Only ``stripe.Webhook.construct_event`` decides whether a delivery is Stripe's (HMAC-SHA256 of
the raw body with ``STRIPE_WEBHOOK_SECRET``, and a timestamp no older than five minutes, so
a captured delivery cannot be replayed later); nothing of an unverified body is read.
"""

import json
from decimal import Decimal

import stripe

from apps.payments.gateway.stripe_adapter import major_units
from apps.payments.models import PaymentEvent
from apps.payments.services import ProviderReport

REFUNDED = "charge.refunded"
DISPUTE_CREATED = "charge.dispute.created"
DISPUTE_CLOSED = "charge.dispute.closed"
_DISPUTE_OUTCOME = {"won": PaymentEvent.Type.DISPUTE_WON, "lost": PaymentEvent.Type.DISPUTE_LOST}


class InvalidWebhook(Exception):
    pass


def stripe_report(*, payload: bytes, signature: str, secret: str) -> ProviderReport:
    try:
        stripe.Webhook.construct_event(payload, signature, secret)
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise InvalidWebhook(f"not a verified Stripe delivery: {exc}") from None
    try:
        return _translate(json.loads(payload))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidWebhook(f"unexpected Stripe event shape: {exc!r}") from None


def _translate(event: dict) -> ProviderReport:
    obj = event["data"]["object"]
    kind = event["type"]
    ledger_type, amount, details = None, Decimal(0), {}
    if kind == REFUNDED:
        ledger_type, amount = PaymentEvent.Type.REFUNDED, major_units(obj["amount_refunded"], obj["currency"])
    elif kind == DISPUTE_CREATED:
        ledger_type, amount = PaymentEvent.Type.DISPUTED, major_units(obj["amount"], obj["currency"])
        details = {"dispute": obj["id"], "reason": obj.get("reason") or ""}
    elif kind == DISPUTE_CLOSED:
        ledger_type = _DISPUTE_OUTCOME.get(obj.get("status"))
        amount = major_units(obj["amount"], obj["currency"])
        details = {"dispute": obj["id"], "status": obj.get("status") or ""}
    reference = obj.get("payment_intent") or ""
    return ProviderReport(
        event_id=str(event["id"]), type=str(kind), reference=str(reference), ledger_type=ledger_type, amount=amount,
        details=details,
    )  # fmt: skip
