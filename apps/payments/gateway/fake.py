"""A Stripe-like provider without a network: the default gateway and the fault-drill target.

Test tokens behave like Stripe's: ``tok_visa`` (and the other card brands) succeed,
``tok_chargeDeclined`` and ``tok_chargeDeclinedInsufficientFunds`` decline,
``tok_chargeDeclinedProcessingError`` fails transiently (``processing_error``: kept under the
key and replayed, as Stripe keeps a card error). Latency, a timeout, a random
transient failure rate, a random share of calls slower than the timeout and a random share of
keyed calls (authorize, capture, void, refund: ``KEPT_FAILURE_OPERATIONS``) that fail inside the
provider (a 5xx kept under the key and replayed to every later call with it, as Stripe keeps a
500; half of them after the work was done) are
configurable for drills (``bench/chaos.py``), and so is an outage (``begin_outage``: every call fails to
connect until it ends, long enough to open the circuit breaker). A call slower than the timeout
is still carried out, as a real provider carries on after the client stopped waiting: the caller
gets a timeout, and the same key answers what was done. The "provider side" (charges, its own
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
    ProviderKeyInUse,
    ProviderKeySpent,
    ProviderNoAnswer,
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
# The calls that ``kept_failure_rate`` may make fail inside the provider (a test narrows it).
KEPT_FAILURE_OPERATIONS = frozenset({"authorize", "capture", "void", "refund"})


def store():
    """The provider's own records: a Redis of its own when configured, else the default cache."""
    return caches["payment_provider" if "payment_provider" in settings.CACHES else "default"]


def begin_outage(seconds: float) -> None:
    """Drill: for ``seconds`` every call (any process) fails as the provider's outage would."""
    store().set(_OUTAGE, 1, timeout=seconds)


def end_outage() -> None:
    store().delete(_OUTAGE)


def _charge_key(reference: str) -> str:
    return f"fakegw:charge:{reference}"


def _order_key(order_id: str) -> str:
    """The provider's index of an order's authorizations (its search on ``metadata.order_id``)."""
    return f"fakegw:order:{order_id}"


def _log_key(operation: str, idempotency_key: str, event: str) -> str:
    return f"fakegw:log:{operation}:{idempotency_key}:{event}"


def _log_started(operation: str, idempotency_key: str) -> None:
    key = _log_key(operation, idempotency_key, "started")
    if not store().add(key, 1, _KEEP):  # one round trip for a key's first call, the usual case
        store().incr(key)


def call_log(operation: str, idempotency_key: str) -> dict[str, int]:
    """The provider's call log, shared by every process (the cache): how many calls with this key
    started and how many ended. A call that started and never ended died with its process."""
    return {event: store().get(_log_key(operation, idempotency_key, event), 0) for event in ("started", "ended")}


class FakeGateway:
    name = "fake"

    def __init__(
        self,
        *,
        latency_ms: int = 0,
        failure_rate: float = 0.0,
        slow_rate: float = 0.0,
        kept_failure_rate: float = 0.0,
        timeout: float = 5.0,
    ):
        self.latency = latency_ms / 1000
        self.failure_rate = failure_rate
        self.slow_rate = slow_rate
        self.kept_failure_rate = kept_failure_rate
        self.timeout = timeout
        self.calls: Counter[str] = Counter()  # per-process call counts, for drills and tests

    def _call(
        self, operation: str, idempotency_key: str, work, *, reference: str | None = None, order_id: str | None = None
    ) -> ProviderResult:
        """One call as the provider sees it: its idempotency (the same key answers the first result
        or decline), the charge it acts on, and the call log.

        The provider's records are read in one round trip and written in one (``get_many``,
        ``set_many``), as a real provider costs us one request: the cost measured by the
        checkout bench is then ours, not the stand-in's. With latency, the call is logged as
        started before the wait, so a process killed mid-call leaves a call that never ended,
        and a second call with the same key while the first still runs is refused as Stripe
        refuses it (409): it would otherwise act a second time. A call slower than the timeout keeps
        its key in flight for the provider's whole time, not only until the caller gave up.
        """
        latency = self.latency
        if self.slow_rate and random.random() < self.slow_rate:  # fault injection, not crypto
            latency = self.timeout + 1
        in_flight = f"fakegw:inflight:{idempotency_key}" if latency else None
        # Held as long as the provider would work on it: a caller that died mid-call frees it then.
        if in_flight and not store().add(in_flight, 1, timeout=min(latency, self.timeout) + 1):
            raise ProviderKeyInUse(f"{operation}: a request with this idempotency key is in progress (409)")
        self.calls[operation] += 1
        try:
            return self._answer(operation, idempotency_key, work, reference, order_id, latency)
        finally:
            if in_flight and latency <= self.timeout:
                store().delete(in_flight)

    def _answer(self, operation, idempotency_key, work, reference: str | None, order_id: str | None, latency: float):
        """``order_id``: an authorization's, which the provider indexes the charge under."""
        s = store()
        started, ended = (_log_key(operation, idempotency_key, event) for event in ("started", "ended"))
        answer_key = f"fakegw:key:{idempotency_key}"
        charge_key = _charge_key(reference) if reference else None
        index_key = _order_key(order_id) if order_id else None
        if latency:
            _log_started(operation, idempotency_key)
            if s.get(_OUTAGE):
                s.set(ended, (s.get(ended) or 0) + 1, _KEEP)
                raise ProviderNoAnswer(f"{operation}: provider outage (drill): connection refused")
            time.sleep(min(latency, self.timeout))
        seen = s.get_many([_OUTAGE, started, ended, answer_key] + [key for key in (charge_key, index_key) if key])
        # The counts are read and written back, not incremented where they are: without latency two
        # calls with one key at the same moment could count once (with latency the second is refused).
        writes = {ended: seen.get(ended, 0) + 1} | ({} if latency else {started: seen.get(started, 0) + 1})
        try:
            if seen.get(_OUTAGE):
                raise ProviderNoAnswer(f"{operation}: provider outage (drill): connection refused")
            if self.failure_rate and random.random() < self.failure_rate:  # fault injection, not crypto
                raise ProviderNoAnswer(
                    f"{operation}: injected provider failure (a 5xx, before any work: nothing kept under the key)"
                )
            answer = seen.get(answer_key)
            if answer is not None and "spent" in answer:  # a replay of the key's kept 5xx
                raise ProviderKeySpent(f"{operation}: {answer['spent']} (replayed to the key)")
            if answer is None:
                fails_inside = (  # fault injection, not crypto
                    operation in KEPT_FAILURE_OPERATIONS
                    and self.kept_failure_rate
                    and random.random() < self.kept_failure_rate
                )
                if not fails_inside or random.random() < 0.5:  # half the failures inside come after the work
                    answer = _worked(work, seen, writes, reference, charge_key, index_key)
                if fails_inside:  # kept, and replayed to every later call with the key
                    answer = {"spent": "injected provider failure inside the request (a 500)"}
                writes[answer_key] = answer
                if fails_inside:  # the first response is a plain 500; a replay says so (ProviderKeySpent)
                    raise ProviderNoAnswer(f"{operation}: {answer['spent']}")
        finally:
            s.set_many(writes, _KEEP)
        if latency > self.timeout:  # done at the provider; the caller stopped waiting at its timeout
            raise ProviderNoAnswer(f"{operation} timed out after {self.timeout}s")
        if "declined" in answer:
            raise PaymentDeclined(*answer["declined"])
        if "failed" in answer:
            raise TransientGatewayError(answer["failed"])
        reference, status, amount, refunded = [*answer["result"], None][:4]  # answers kept before refunds said
        return ProviderResult(reference, status, _decimal(amount), refunded=_decimal(refunded))

    def authorize(self, *, amount, currency, token, idempotency_key, metadata) -> ProviderResult:
        def work(_charge):
            if token in TRANSIENT_TOKENS:
                raise TransientGatewayError("processing_error: an error occurred while processing the card")
            if token in DECLINES:
                raise PaymentDeclined(*DECLINES[token])
            if token not in SUCCESS_TOKENS:
                raise PaymentDeclined("invalid_token", "The card token is not valid.")
            charge = {"amount": amount, "captured": Decimal(0), "refunded": Decimal(0), "status": "requires_capture"}
            return ProviderResult(reference=f"fake_pi_{uuid.uuid4().hex}", status="requires_capture"), charge

        return self._call("authorize", idempotency_key, work, order_id=metadata.get("order_id"))

    def capture(self, *, reference, amount, currency, idempotency_key) -> ProviderResult:
        def work(charge):
            if charge["status"] != "requires_capture":
                raise PermanentGatewayError(f"Payment {reference} is {charge['status']}", code=UNEXPECTED_STATE)
            charge.update(captured=amount, status="succeeded")
            return ProviderResult(reference=reference, status="succeeded", amount=amount), charge

        return self._call("capture", idempotency_key, work, reference=reference)

    def void(self, *, reference, idempotency_key) -> ProviderResult:
        def work(charge):
            if charge["status"] != "requires_capture":
                raise PermanentGatewayError(f"Payment {reference} is {charge['status']}", code=UNEXPECTED_STATE)
            charge.update(status="canceled")
            return ProviderResult(reference=reference, status="canceled"), charge

        return self._call("void", idempotency_key, work, reference=reference)

    def refund(self, *, reference, amount, currency, idempotency_key) -> ProviderResult:
        def work(charge):
            if charge["status"] != "succeeded" or charge["refunded"] + amount > charge["captured"]:
                raise PermanentGatewayError("Refund exceeds the captured amount", code="charge_already_refunded")
            charge["refunded"] += amount
            result = ProviderResult(f"fake_re_{uuid.uuid4().hex}", "succeeded", amount, refunded=charge["refunded"])
            return result, charge

        return self._call("refund", idempotency_key, work, reference=reference)

    def find_authorizations(self, *, order_id) -> list[ProviderResult]:
        """The provider's search. It indexes at once; Stripe's lag is the caller's to allow for."""
        self._read("search")
        references = store().get(_order_key(order_id)) or []
        charges = store().get_many([_charge_key(reference) for reference in references])
        return [
            _charge_result(reference, charge)
            for reference in references
            if (charge := charges.get(_charge_key(reference))) is not None
        ]

    def payment_get(self, *, reference) -> ProviderResult:
        self._read("retrieve")
        return _charge_result(reference, store().get(_charge_key(reference)))

    def _read(self, operation: str) -> None:
        """A read is a request of its own (latency, outage, injected 5xx), without a key."""
        if self.latency:
            time.sleep(min(self.latency, self.timeout))
        if store().get(_OUTAGE):
            raise ProviderNoAnswer(f"{operation}: provider outage (drill): connection refused")
        if self.failure_rate and random.random() < self.failure_rate:  # fault injection, not crypto
            raise ProviderNoAnswer(f"{operation}: injected provider failure (a 5xx)")


def _charge_result(reference: str, stored: dict | None) -> ProviderResult:
    charge = _charge_from(stored, reference)
    received = charge["status"] == "succeeded"
    amount = charge["captured"] if received else charge["amount"]
    return ProviderResult(reference, charge["status"], amount, refunded=charge["refunded"])


def _worked(work, seen: dict, writes: dict, reference, charge_key, index_key) -> dict:
    """Do the call's work on the charge; its writes join ``writes``. The answer to keep under the key."""
    try:
        charge = _charge_from(seen.get(charge_key), reference) if charge_key else None
        result, charge = work(charge)
    except PaymentDeclined as declined:
        return {"declined": [declined.code, declined.message]}
    except TransientGatewayError as failed:  # a card error is kept under the key, as Stripe keeps it
        return {"failed": str(failed)}
    money = {field: str(charge[field]) for field in _MONEY}
    writes[charge_key or _charge_key(result.reference)] = charge | money
    if index_key:
        writes[index_key] = [*seen.get(index_key, []), result.reference]  # read, then written: one key per order
    amount, refunded = (None if value is None else str(value) for value in (result.amount, result.refunded))
    return {"result": [result.reference, result.status, amount, refunded]}


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def charge_get(reference: str) -> dict:
    """The provider's record of a charge (drills and tests look at the provider's side with it)."""
    return _charge_from(store().get(_charge_key(reference)), reference)


def _charge_from(stored: dict | None, reference: str) -> dict:
    """The charge with its money as Decimals (the cache holds JSON, so strings)."""
    if stored is None:
        raise PermanentGatewayError(f"No such payment: {reference}", code="resource_missing")
    return {**stored, **{field: Decimal(stored[field]) for field in _MONEY}}
