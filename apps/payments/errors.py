"""Domain errors of the payments context (mapped to the API envelope by ``shop.api.exceptions``)."""

from decimal import Decimal
from http import HTTPStatus

from shop.errors import DomainError


class PaymentError(DomainError):
    """The command cannot apply (a caller's mistake, not a provider outcome)."""

    code = "REFUND_REJECTED"


class PaymentNotFound(PaymentError):
    code = "PAYMENT_NOT_FOUND"
    http_status = HTTPStatus.NOT_FOUND
    public_message = "Payment not found."


class PaymentStateError(PaymentError):
    code = "INVALID_STATE"
    http_status = HTTPStatus.CONFLICT

    def __init__(self, payment, operation: str):
        state = payment.status if payment else "no payment"
        super().__init__(f"Cannot {operation}: {state}")
        self.status = payment.status if payment else None

    def details(self) -> dict:
        return {"status": self.status}


class RefundExceedsCaptured(PaymentError):
    code = "REFUND_EXCEEDS_CAPTURED"
    http_status = HTTPStatus.CONFLICT

    def __init__(self, refundable: Decimal):
        super().__init__(f"At most {refundable} can still be refunded")
        self.refundable = refundable

    def details(self) -> dict:
        return {"refundable": str(self.refundable)}


class IdempotencyKeyReused(PaymentError):
    pass


class RefundDeclined(PaymentError):
    """The provider refused the refund (its own decline code in the details)."""

    code = "REFUND_REJECTED"
    http_status = HTTPStatus.CONFLICT

    def __init__(self, message: str, *, decline_code: str | None):
        super().__init__(message)
        self.decline_code = decline_code

    def details(self) -> dict:
        return {"code": self.decline_code}


class ProviderUnavailable(PaymentError):
    """The provider stayed unreachable (retries exhausted or circuit open); the same key may retry."""

    code = "PAYMENT_PROVIDER_UNAVAILABLE"
    http_status = HTTPStatus.SERVICE_UNAVAILABLE


class WebhookRejected(DomainError):
    """A webhook delivery that is not verifiably the provider's (bad or missing signature)."""

    code = "INVALID_WEBHOOK"
    http_status = HTTPStatus.BAD_REQUEST
    public_message = "Not a verified provider event."
