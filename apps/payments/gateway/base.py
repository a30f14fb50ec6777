"""The payment gateway port: what the payments context needs from any provider.

Adapters translate their provider's outcomes into three kinds of failure, because each is
handled differently: a *decline* is a final business answer (never retried, never counts
against the circuit breaker); a *transient* error may succeed on retry and counts as the
provider being unhealthy; a *permanent* error means our request was wrong (not retried,
and not the provider's ill health either).
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class ProviderResult:
    reference: str  # the provider's id of the payment (or of the refund)
    status: str  # the provider's own status word, kept for the ledger
    # The money the provider reports for this step (a capture: the amount it actually
    # received), in major units; None when it reported none. The ledger trusts this figure
    # over the amount we asked for.
    amount: Decimal | None = None
    # The running total the provider has refunded of the payment: read by its id (``payment_get``), and
    # after a refund (that one included); None when its answer does not say (Stripe's search results,
    # its answers to the other calls).
    refunded: Decimal | None = None


class GatewayError(Exception):
    pass


class PaymentDeclined(GatewayError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class TransientGatewayError(GatewayError):
    """Worth trying again. This class itself is the provider's answer that the request failed and
    nothing was done (a retryable card error: ``processing_error``); ``ProviderNoAnswer`` is no
    answer at all."""


class ProviderNoAnswer(TransientGatewayError):
    """No answer about the request: the connection was refused or cut, the client timed out, the
    provider turned it away unread (429) or failed inside (5xx, an outcome Stripe calls
    indeterminate). The request may never have arrived, or may have been acted on."""


class ProviderKeySpent(ProviderNoAnswer):
    """The provider answers this idempotency key with its first request's 5xx, replayed: that
    request failed inside the provider, which keeps the response and gives it to every later
    request with the key (Stripe: "including 500 errors", each replay marked
    ``Idempotent-Replayed: true``). Asking again with the key can never tell what that request
    did; only the provider's records of the order can (``find_authorizations``, ``payment_get``).
    Not retried. The breaker takes a replay as the provider answering, and counts only the call
    that got the fresh 500 first (``resilience.guarded``)."""


# The provider's refusal of an operation its record of the payment does not allow (Stripe's
# code: voiding a PaymentIntent that was captured, capturing one that was cancelled).
UNEXPECTED_STATE = "payment_intent_unexpected_state"


class PermanentGatewayError(GatewayError):
    def __init__(self, message: str, code: str = "invalid_request"):
        super().__init__(message)
        self.code = code


class ProviderKeyInUse(GatewayError):
    """The provider is still working on a request with this idempotency key (Stripe's 409): not
    an answer, and not the provider failing. Ask again once that request ended; its answer will
    be the first one's."""


class GatewayUnavailable(GatewayError):
    """Transient errors outlasted the retries, or the circuit breaker is open. ``answered``: the last
    attempt's error was the provider's own answer that it did nothing (a plain
    ``TransientGatewayError``). Otherwise nothing is known: this call, or an earlier call with the
    same key (another delivery, a worker killed mid-call), may have been acted on."""

    def __init__(self, message: str, *, answered: bool):
        super().__init__(message)
        self.answered = answered


class PaymentGateway(Protocol):
    name: str

    def authorize(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str, metadata: dict[str, str]
    ) -> ProviderResult: ...

    def capture(self, *, reference: str, amount: Decimal, currency: str, idempotency_key: str) -> ProviderResult: ...

    def void(self, *, reference: str, idempotency_key: str) -> ProviderResult: ...

    def refund(self, *, reference: str, amount: Decimal, currency: str, idempotency_key: str) -> ProviderResult: ...

    def find_authorizations(self, *, order_id: str) -> list[ProviderResult]:
        """The provider's payments made for an order (``metadata.order_id``), whichever key made them:
        its search, which it indexes shortly after the fact (Stripe: "under 1 minute" normally), for
        new payments and changed ones alike."""
        ...

    def payment_get(self, *, reference: str) -> ProviderResult:
        """The provider's current record of one payment, read by its id (current at once, unlike the
        search). ``amount``: what it received once captured, else what it holds; ``refunded``: the
        total it has refunded of it."""
        ...
