"""The public door of the payments context: the only module other contexts may import.

Provider outcomes never raise: a decline is ``declined=True, status="FAILED"``; a provider
that stays down (retries exhausted, circuit open) is ``declined=False, status="FAILED"`` and
the same idempotency key may be retried later. A command that cannot apply (nothing to
capture, refund above what was captured, a key reused for another request) raises a
``PaymentError``. One answer is not an outcome: an authorization whose key the provider is still
working on raises ``ProviderKeyInUse`` (no answer yet; retry later with the same key).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from apps.payments import selectors, services
from apps.payments.errors import (  # noqa: F401 - part of the facade
    IdempotencyKeyReused,
    PaymentError,
    PaymentNotFound,
    PaymentStateError,
    RefundExceedsCaptured,
)
from apps.payments.gateway import UNEXPECTED_STATE, ProviderKeyInUse  # noqa: F401 - part of the facade
from apps.payments.models import Payment, PaymentStatus
from apps.payments.services import KEY_SPENT  # noqa: F401 - part of the facade


@dataclass(frozen=True)
class PaymentResult:
    payment_id: uuid.UUID | None
    status: str
    declined: bool
    decline_code: str | None
    message: str
    provider_unavailable: bool = False  # no answer (after retries, or circuit open): retry later
    replayed: bool = False  # the stored answer of an earlier call with the same key: nothing changed now


@dataclass(frozen=True)
class PaymentView:
    id: uuid.UUID
    order_id: uuid.UUID
    amount: Decimal
    currency: str
    status: str
    provider: str
    provider_reference: str
    captured_amount: Decimal
    refunded_amount: Decimal
    created_at: datetime


@dataclass(frozen=True)
class PaymentLedgerEntry:
    """One line of a payment's ledger (authorized, captured, refunded...), for staff pages."""

    payment_id: uuid.UUID
    type: str
    amount: Decimal
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class PaymentReversal:
    """What ``payment_reverse`` did: ``done`` is NONE, VOIDED or REFUNDED (the last reversal
    made); ``confirmed`` is False when the provider did not confirm it (retry later)."""

    done: str
    confirmed: bool
    message: str
    provider_unavailable: bool = False  # no answer (after retries, or circuit open): retry later


def _result(outcome: services.Outcome) -> PaymentResult:
    return PaymentResult(**vars(outcome))  # scalars only: asdict's deep copy cost more than the call


ProviderAnswer = services.ProviderAnswer


def payment_authorization_ask(
    *, order_id: uuid.UUID, amount: Decimal, currency: str, token: str, idempotency_key: str
) -> ProviderAnswer:
    """The provider's answer, asked without the payments database (nothing is recorded): pass it
    to ``payment_authorize`` with the same arguments, which records it once per key."""
    return services.payment_authorization_ask(
        order_id=order_id, amount=amount, currency=currency, token=token, idempotency_key=idempotency_key
    )


def payment_authorize(
    *,
    order_id: uuid.UUID,
    amount: Decimal,
    currency: str,
    token: str,
    idempotency_key: str,
    answer: ProviderAnswer | None = None,
) -> PaymentResult:
    return _result(
        services.payment_authorize(
            order_id=order_id,
            amount=amount,
            currency=currency,
            token=token,
            idempotency_key=idempotency_key,
            answer=answer,
        )
    )


def payment_provider_reconcile(*, order_id: uuid.UUID, amount: Decimal, currency: str) -> str | None:
    """Our record of the order's payments brought in line with the provider's (its search names them,
    each is read by its id): an authorization we never recorded, a capture, void or refund whose
    answer we never had; why to wait, or None when done."""
    return services.payment_provider_reconcile(order_id=order_id, amount=amount, currency=currency)


ProviderRecord = services.ProviderRecord


def payment_provider_record_read(*, order_id: uuid.UUID) -> ProviderRecord:
    """The provider's record of the order's payments, read without the payments database (nothing is
    recorded): pass it to ``payment_authorization_from_record``."""
    return services.payment_provider_record_read(order_id=order_id)


def payment_authorization_from_record(
    *, order_id: uuid.UUID, amount: Decimal, currency: str, record: ProviderRecord | None = None
) -> tuple[PaymentResult | None, str | None]:
    """After the checkout's authorization key came back spent: the order's authorization as the
    provider's record shows it (None: it shows none), and why to wait while it cannot tell yet."""
    found, waiting = services.payment_authorization_from_record(
        order_id=order_id, amount=amount, currency=currency, record=record
    )
    return (None if found is None else _result(found)), waiting


def payment_capture(*, order_id: uuid.UUID, idempotency_key: str) -> PaymentResult:
    """Capture the order's authorized payment; a repeat on a captured payment says so. A key the
    provider answers with a kept 5xx is settled by its record (``services.payment_capture_known``)."""
    return _result(services.payment_capture_known(order_id=order_id, idempotency_key=idempotency_key))


def payment_void(*, order_id: uuid.UUID, idempotency_key: str) -> PaymentResult:
    """Void the order's authorized payment; a repeat on a voided payment says so. A key the provider
    answers with a kept 5xx is settled by its record (``services.payment_void_known``)."""
    return _result(services.payment_void_known(order_id=order_id, idempotency_key=idempotency_key))


def payment_refund(*, order_id: uuid.UUID, amount: Decimal | None, reason: str, idempotency_key: str) -> PaymentResult:
    """Refund the order's captured payment; ``amount=None`` refunds whatever is still refundable."""
    payment_id = services.refundable_payment_for_order(order_id)
    return _result(
        services.payment_refund(payment_id=payment_id, amount=amount, reason=reason, idempotency_key=idempotency_key)
    )


def order_payment_key(*, order_id: uuid.UUID | str, action: str) -> str:
    """The idempotency key of an order's checkout payment command (``authorize``, ``capture``,
    ``void``, ``refund``): one per order and action, so a repeated command, ours or a retry of
    it, reaches the provider as the same request."""
    return f"order:{order_id}:{action}"


def payment_reverse(*, order_id: uuid.UUID, reason: str) -> PaymentReversal:
    """Give back whatever money the order moved: void an authorization, refund a capture in
    full, or nothing when no money moved (so a repeat after success reverses nothing: NONE).
    One idempotency key per order for the void, and one for the refund per amount our record shows
    refunded (a new one also after the provider replays a 5xx to a key, below). Stops at the first
    void or refund the provider does not confirm (``confirmed=False``).

    A void the provider refuses because its record of the payment is no longer an authorization
    (``UNEXPECTED_STATE``) is settled by that record (``services.payment_void_known``): captured on
    a call whose answer we lost, the payment is recorded CAPTURED and refunded; cancelled without
    us, VOIDED. If the provider replays a 5xx to the void's or the refund's key, its record says
    what the payment is (``payment_provider_reconcile``), and what did not happen is asked again
    under a new key."""
    reversal = PaymentReversal(done="NONE", confirmed=True, message="")
    for payment in selectors.payments_for_order(order_id=order_id):
        status = payment.status
        if status == PaymentStatus.AUTHORIZED:
            void_key = order_payment_key(order_id=order_id, action="void")
            outcome = services.payment_void_known(order_id=order_id, idempotency_key=void_key)
            status = outcome.status
            reversal = PaymentReversal(
                "VOIDED", outcome.status == PaymentStatus.VOIDED, outcome.message, outcome.provider_unavailable
            )
        if status in (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED):
            # Keyed by what our record shows refunded, as staff's "refund everything still refundable" is:
            # a refund our record learns of between two asks (a dashboard refund reported late) makes a
            # new key for the rest, where one key would replay the provider's refusal of the larger
            # amount until the saga ended FAILED. The read is not locked: a refund recorded between it
            # and the refund's own lock sends this key with the smaller rest, and the next ask reads anew.
            outcome = services.payment_refund_known(
                payment_id=payment.id,
                reason=reason,
                key_prefix=order_payment_key(order_id=order_id, action="refund"),
                refunded_seen=selectors.payment_get(payment_id=payment.id).refunded_amount,
            )
            reversal = PaymentReversal(
                "REFUNDED", outcome.status == PaymentStatus.REFUNDED, outcome.message, outcome.provider_unavailable
            )
        if not reversal.confirmed:
            break
    return reversal


def _view(payment: Payment) -> PaymentView:
    return PaymentView(
        id=payment.id,
        order_id=payment.order_id,
        amount=payment.amount,
        currency=payment.currency,
        status=payment.status,
        provider=payment.provider,
        provider_reference=payment.provider_reference,
        captured_amount=payment.captured_amount,
        refunded_amount=payment.refunded_amount,
        created_at=payment.created_at,
    )


def payments_for_order(*, order_id: uuid.UUID) -> list[PaymentView]:
    return [_view(payment) for payment in selectors.payments_for_order(order_id=order_id)]


def payment_ledger_for_order(*, order_id: uuid.UUID) -> list[PaymentLedgerEntry]:
    """Every ledger line of the order's payments, oldest first (refunds carry their reason)."""
    return [
        PaymentLedgerEntry(
            payment_id=event.payment_id,
            type=event.type,
            amount=event.amount,
            reason=str(event.data.get("reason", "")),
            created_at=event.created_at,
        )
        for event in selectors.payment_events_for_order(order_id=order_id)
    ]
