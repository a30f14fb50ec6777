"""Stripe through the official library: manual-capture PaymentIntents, idempotency keys passed
through, a hard timeout and no library-level retries (our retry policy owns that decision).

``STRIPE_API_BASE`` points the client elsewhere (the tests run a local stub server).
"""

from decimal import Decimal

import stripe

from apps.payments.gateway.base import (
    PaymentDeclined,
    PermanentGatewayError,
    ProviderKeyInUse,
    ProviderKeySpent,
    ProviderNoAnswer,
    ProviderResult,
    TransientGatewayError,
)

# Currencies whose smallest unit is the unit itself (Stripe's list, abridged to the common ones).
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "VND", "VUV", "XAF"})
RETRYABLE_CARD_CODES = frozenset({"processing_error"})


def minor_units(amount: Decimal, currency: str) -> int:
    return int(amount if currency.upper() in ZERO_DECIMAL else (amount * 100).to_integral_value())


def major_units(amount: int | None, currency: str) -> Decimal | None:
    if amount is None:
        return None
    return Decimal(amount) if currency.upper() in ZERO_DECIMAL else (Decimal(amount) / 100).quantize(Decimal("0.01"))


def _replayed(exc: stripe.StripeError) -> bool:
    """Stripe marks a response it replays to an idempotency key (``Idempotent-Replayed: true``)."""
    return any(name.lower() == "idempotent-replayed" and value == "true" for name, value in exc.headers.items())


class StripeGateway:
    name = "stripe"

    def __init__(self, *, api_key: str, api_base: str, timeout: float):
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base},
            http_client=stripe.RequestsClient(timeout=timeout),
            max_network_retries=0,
        )

    @staticmethod
    def _call(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except stripe.CardError as exc:
            code = (exc.error.decline_code if exc.error else None) or exc.code or "card_declined"
            if exc.code in RETRYABLE_CARD_CODES:
                raise TransientGatewayError(f"{exc.code}: {exc.user_message}") from exc
            raise PaymentDeclined(code, exc.user_message or "Your card was declined.") from exc
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise ProviderNoAnswer(str(exc)) from exc
        except stripe.StripeError as exc:
            # 409: another request with this idempotency key is still running at Stripe (a re-sent
            # command overtaking the first, whose provider call no claim of ours holds back any
            # more: apps/payments/services.py). Not a refusal: asked again later, it answers the
            # first request's result.
            if exc.http_status == 409:
                raise ProviderKeyInUse(str(exc)) from exc
            if exc.http_status is None or exc.http_status >= 500:
                if _replayed(exc):  # the key's first request failed inside Stripe: it will say nothing else
                    raise ProviderKeySpent(str(exc)) from exc
                raise ProviderNoAnswer(str(exc)) from exc
            raise PermanentGatewayError(str(exc), code=exc.code or "invalid_request") from exc

    def authorize(self, *, amount, currency, token, idempotency_key, metadata) -> ProviderResult:
        intent = self._call(
            self.client.v1.payment_intents.create,
            params={
                "amount": minor_units(amount, currency),
                "currency": currency.lower(),
                "capture_method": "manual",
                "confirm": True,
                "payment_method_data": {"type": "card", "card": {"token": token}},
                "metadata": metadata,
            },
            options={"idempotency_key": idempotency_key},
        )
        if intent.status != "requires_capture":  # e.g. requires_action (3-D Secure): not payable here
            raise PaymentDeclined("authentication_required", f"Payment needs {intent.status}.")
        return ProviderResult(reference=intent.id, status=intent.status)

    def capture(self, *, reference, amount, currency, idempotency_key) -> ProviderResult:
        intent = self._call(
            self.client.v1.payment_intents.capture,
            reference,
            params={"amount_to_capture": minor_units(amount, currency)},
            options={"idempotency_key": idempotency_key},
        )
        received = major_units(getattr(intent, "amount_received", None), currency)
        return ProviderResult(reference=intent.id, status=intent.status, amount=received)

    def void(self, *, reference, idempotency_key) -> ProviderResult:
        intent = self._call(
            self.client.v1.payment_intents.cancel, reference, options={"idempotency_key": idempotency_key}
        )
        return ProviderResult(reference=intent.id, status=intent.status)

    def refund(self, *, reference, amount, currency, idempotency_key) -> ProviderResult:
        # The charge, expanded, says what has been refunded in all, this refund included: the payment is
        # recorded by that running total, so a replay of a refund already counted counts nothing.
        refund = self._call(
            self.client.v1.refunds.create,
            params={"payment_intent": reference, "amount": minor_units(amount, currency), "expand": ["charge"]},
            options={"idempotency_key": idempotency_key},
        )
        return ProviderResult(
            reference=refund.id, status=refund.status, amount=major_units(getattr(refund, "amount", None), currency),
            refunded=major_units(_amount_refunded(getattr(refund, "charge", None)), currency),
        )  # fmt: skip

    def find_authorizations(self, *, order_id) -> list[ProviderResult]:
        # Search, not list: only search filters on metadata. The order id is a UUID, so it needs no
        # quoting inside the query's string literal. One checkout makes one PaymentIntent per order.
        found = self._call(
            self.client.v1.payment_intents.search, params={"query": f"metadata['order_id']:'{order_id}'", "limit": 100}
        )
        return [_intent_result(intent) for intent in found.data]

    def payment_get(self, *, reference) -> ProviderResult:
        # The charge says what was refunded (``amount_refunded``); the PaymentIntent alone does not.
        intent = self._call(self.client.v1.payment_intents.retrieve, reference, params={"expand": ["latest_charge"]})
        return _intent_result(intent)


def _intent_result(intent) -> ProviderResult:
    """A PaymentIntent in our terms. Its ``latest_charge`` is an id unless it was expanded (a read by
    id asks for it); only the expanded charge says what was refunded."""
    captured = intent.status == "succeeded"
    minor = getattr(intent, "amount_received", None) if captured else getattr(intent, "amount", None)
    refunded = _amount_refunded(getattr(intent, "latest_charge", None))
    currency = intent.currency
    return ProviderResult(
        intent.id, intent.status, amount=major_units(minor, currency), refunded=major_units(refunded, currency)
    )


def _amount_refunded(charge) -> int | None:
    """What a charge says was refunded of it in all; None when it is only an id (not expanded)."""
    return None if charge is None or isinstance(charge, str) else getattr(charge, "amount_refunded", None)
