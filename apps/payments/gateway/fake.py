"""A Stripe-like provider without a network: the default gateway and the fault-drill target.

Test tokens behave like Stripe's: ``tok_visa`` (and the other card brands) succeed,
``tok_chargeDeclined`` and ``tok_chargeDeclinedInsufficientFunds`` decline,
``tok_chargeDeclinedProcessingError`` fails transiently. Latency, a timeout, a random
transient failure rate and a random share of calls slower than the timeout are configurable
for drills (``bench/chaos.py``), and so is an outage (``begin_outage``: every call fails until it
ends, long enough to open the circuit breaker). The "provider side" (charges, its own
idempotency keys, the call log, the outage) is kept in a Django cache, i.e. Redis when
configured, so a charge authorized by one process can be captured by another, as with a real
provider: the ``payment_provider`` cache when ``PAYMENT_FAKE_REDIS_URL`` gives it a Redis of its
own (a drill that restarts our Redis keeps the provider's ledger), the default cache otherwise.
"""

import random
import time
import uuid
from collections import Counter
from decimal import Decimal

from django.conf import settings
from django.core.cache import caches

from apps.payments.gateway.base import (
    UNEXPECTED_STATE,
    PaymentDeclined,
    PermanentGatewayError,
    ProviderResult,
    TransientGatewayError,
)

SUCCESS_TOKENS = frozenset({"tok_visa", "tok_visa_debit", "tok_mastercard", "tok_amex", "tok_discover"})
DECLINES = {
    "tok_chargeDeclined": ("card_declined", "Your card was declined."),
    "tok_chargeDeclinedInsufficientFunds": ("insufficient_funds", "Your card has insufficient funds."),
    "tok_chargeDeclinedExpiredCard": ("expired_card", "Your card has expired."),
}
TRANSIENT_TOKENS = frozenset({"tok_chargeDeclinedProcessingError"})
_KEEP = 7 * 24 * 3600
_MONEY = ("amount", "captured", "refunded")
_OUTAGE = "fakegw:outage"


def store():
    """The provider's own records: a Redis of its own when configured, else the default cache."""
    return caches["payment_provider" if "payment_provider" in settings.CACHES else "default"]


def begin_outage(seconds: float) -> None:
    """Drill: for ``seconds`` every call (any process) fails as the provider's outage would."""
    store().set(_OUTAGE, 1, timeout=seconds)


def end_outage() -> None:
    store().delete(_OUTAGE)


def _log(operation: str, idempotency_key: str, event: str) -> None:
    key = f"fakegw:log:{operation}:{idempotency_key}:{event}"
    if not store().add(key, 1, _KEEP):  # one round trip for a key's first call, the usual case
        store().incr(key)


def call_log(operation: str, idempotency_key: str) -> dict[str, int]:
    """The provider's call log, shared by every process (the cache): how many calls with this key
    started and how many ended. A call that started and never ended died with its process."""
    key = f"fakegw:log:{operation}:{idempotency_key}"
    return {event: store().get(f"{key}:{event}", 0) for event in ("started", "ended")}


class FakeGateway:
    name = "fake"

    def __init__(self, *, latency_ms: int = 0, failure_rate: float = 0.0, slow_rate: float = 0.0, timeout: float = 5.0):
        self.latency = latency_ms / 1000
        self.failure_rate = failure_rate
        self.slow_rate = slow_rate
        self.timeout = timeout
        self.calls: Counter[str] = Counter()  # per-process call counts, for drills and tests

    def _network(self, operation: str, idempotency_key: str) -> None:
        self.calls[operation] += 1
        _log(operation, idempotency_key, "started")
        try:
            latency = self.latency
            if self.slow_rate and random.random() < self.slow_rate:  # fault injection, not crypto
                latency = self.timeout + 1
            if store().get(_OUTAGE):
                raise TransientGatewayError(f"{operation}: provider outage (drill)")
            if latency:
                time.sleep(min(latency, self.timeout))
                if latency > self.timeout:
                    raise TransientGatewayError(f"{operation} timed out after {self.timeout}s")
            if self.failure_rate and random.random() < self.failure_rate:  # fault injection, not crypto
                raise TransientGatewayError(f"{operation}: injected provider failure")
        finally:
            _log(operation, idempotency_key, "ended")

    def _once(self, idempotency_key: str, work) -> ProviderResult:
        """The provider's own idempotency: the same key returns the first result (or decline)."""
        stored = store().get(f"fakegw:key:{idempotency_key}")
        if stored is None:
            try:
                result = work()
                amount = None if result.amount is None else str(result.amount)
                stored = {"result": [result.reference, result.status, amount]}
            except PaymentDeclined as declined:
                stored = {"declined": [declined.code, declined.message]}
            store().set(f"fakegw:key:{idempotency_key}", stored, _KEEP)
        if "declined" in stored:
            raise PaymentDeclined(*stored["declined"])
        reference, status, amount = stored["result"]
        return ProviderResult(reference, status, None if amount is None else Decimal(amount))

    def _charge(self, reference: str) -> dict:
        """The charge with its money as Decimals (the cache holds JSON, so strings)."""
        charge = store().get(f"fakegw:charge:{reference}")
        if charge is None:
            raise PermanentGatewayError(f"No such payment: {reference}", code="resource_missing")
        return {**charge, **{field: Decimal(charge[field]) for field in _MONEY}}

    @staticmethod
    def _save(reference: str, charge: dict) -> None:
        store().set(f"fakegw:charge:{reference}", {**charge, **{f: str(charge[f]) for f in _MONEY}}, _KEEP)

    def authorize(self, *, amount, currency, token, idempotency_key, metadata) -> ProviderResult:
        self._network("authorize", idempotency_key)

        def work():
            if token in TRANSIENT_TOKENS:
                raise TransientGatewayError("processing_error: an error occurred while processing the card")
            if token in DECLINES:
                raise PaymentDeclined(*DECLINES[token])
            if token not in SUCCESS_TOKENS:
                raise PaymentDeclined("invalid_token", "The card token is not valid.")
            reference = f"fake_pi_{uuid.uuid4().hex}"
            charge = {"amount": amount, "captured": Decimal(0), "refunded": Decimal(0), "status": "requires_capture"}
            self._save(reference, charge)
            return ProviderResult(reference=reference, status="requires_capture")

        return self._once(idempotency_key, work)

    def capture(self, *, reference, amount, currency, idempotency_key) -> ProviderResult:
        self._network("capture", idempotency_key)

        def work():
            charge = self._charge(reference)
            if charge["status"] != "requires_capture":
                raise PermanentGatewayError(f"Payment {reference} is {charge['status']}", code=UNEXPECTED_STATE)
            charge.update(captured=amount, status="succeeded")
            self._save(reference, charge)
            return ProviderResult(reference=reference, status="succeeded", amount=amount)

        return self._once(idempotency_key, work)

    def void(self, *, reference, idempotency_key) -> ProviderResult:
        self._network("void", idempotency_key)

        def work():
            charge = self._charge(reference)
            if charge["status"] != "requires_capture":
                raise PermanentGatewayError(f"Payment {reference} is {charge['status']}", code=UNEXPECTED_STATE)
            charge.update(status="canceled")
            self._save(reference, charge)
            return ProviderResult(reference=reference, status="canceled")

        return self._once(idempotency_key, work)

    def refund(self, *, reference, amount, currency, idempotency_key) -> ProviderResult:
        self._network("refund", idempotency_key)

        def work():
            charge = self._charge(reference)
            if charge["status"] != "succeeded" or charge["refunded"] + amount > charge["captured"]:
                raise PermanentGatewayError("Refund exceeds the captured amount", code="charge_already_refunded")
            charge["refunded"] += amount
            self._save(reference, charge)
            return ProviderResult(reference=f"fake_re_{uuid.uuid4().hex}", status="succeeded")

        return self._once(idempotency_key, work)
