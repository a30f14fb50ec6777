"""Payments' part in the checkout saga: obey the saga's commands, answer with reply events.

Every provider call goes through the payment services' idempotency log, so a command the
saga re-sends after a timeout never charges twice; the reply is published again either way,
because the saga may have missed the first one. Each step is the payments facade's function,
the one door tests and other contexts use too.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

import structlog
from django.utils import timezone

from apps.orders import facade as orders
from apps.orders.events import (
    PAYMENT_AUTHORIZATION_REQUESTED,
    PAYMENT_CAPTURE_REQUESTED,
    PAYMENT_REVERSAL_REQUESTED,
)
from apps.payments import events
from apps.payments import facade as payments
from apps.payments.models import PaymentStatus
from shop.events import Envelope, publish, subscriber

ALIAS = "payments"
logger = structlog.get_logger("apps.payments.checkout")


def _reply(event_type: str, order_id: uuid.UUID, result: payments.PaymentResult | None = None, **extra) -> None:
    data = {"orderId": order_id, **extra}
    if result is not None:
        data.update(
            paymentId=str(result.payment_id) if result.payment_id else None,
            status=result.status,
            declined=result.declined,
            declineCode=result.decline_code,
            message=result.message,
        )
    publish(event_type, data, aggregate_id=order_id, using=ALIAS)


# Stripe keeps the answer of an idempotency key for at least 24 hours. A checkout still running
# later than that (its saga stuck) is asked after the claim instead: asked first, a provider that
# has forgotten the key would authorize anew behind a log entry already completed.
PROVIDER_KEY_KEPT = timedelta(hours=24)


def _provider_forgot_key(request: orders.PaymentRequest) -> bool:
    """The checkout's key is older than the provider keeps its answer (keyed by the order's age)."""
    return timezone.now() - request.created_at > PROVIDER_KEY_KEPT


@dataclass(frozen=True)
class _Asked:
    """The order's payment request and what the provider answered to it (None: ask after the claim);
    after a spent key, the provider's record of the order's payments (read before the transaction too)."""

    request: orders.PaymentRequest
    answer: payments.ProviderAnswer | None
    record: payments.ProviderRecord | None = None


def _authorization_ask(envelope: Envelope) -> _Asked | None:
    """Before the delivery's transaction: the order's amount and token (the orders connection goes
    back to the pool at once) and the provider's answer, with the saga's idempotency key. A slow
    provider then holds this thread only, not a payments connection idle in its transaction: with
    PostgreSQL's 100 connections, that is what let more authorizations wait at once. None when
    the checkout has already ended (the token is erased at that point): a late re-send. A provider
    still working on the key (a re-send overtook the first call, or our timeout cut our own
    attempt off) raises ``ProviderKeyInUse``: the delivery is retried later, and then gets the
    first request's answer."""
    request = orders.order_payment_request_get(order_id=uuid.UUID(envelope.data["orderId"]))
    if request is None or not request.token:
        return None
    if _provider_forgot_key(request):
        return _Asked(request, None)
    answer = payments.payment_authorization_ask(
        order_id=request.order_id,
        amount=request.amount,
        currency=request.currency,
        token=request.token,
        idempotency_key=envelope.data["idempotencyKey"],
    )
    if answer.failure == "spent":  # the key will never tell: the provider's record will
        return _Asked(request, answer, payments.payment_provider_record_read(order_id=request.order_id))
    return _Asked(request, answer)


@subscriber(
    PAYMENT_AUTHORIZATION_REQUESTED, consumer="payments.checkout.authorize", context=ALIAS, prepare=_authorization_ask
)
def authorize_for_checkout(envelope: Envelope, asked: _Asked | None) -> None:
    """The amount and the card token come from the order itself (orders facade), never from the
    command: the token stays out of every event, and the amount is the order's total. The reply
    says what was authorized, and the saga checks it against the total before confirming."""
    order_id = uuid.UUID(envelope.data["orderId"])
    if asked is None:
        message = "No card token on the order."
        _reply(events.AUTHORIZATION_FAILED, order_id, None, declined=False, message=message, mayBeAuthorized=False)
        return
    request = asked.request
    outcome = payments.payment_authorize(
        order_id=order_id,
        amount=request.amount,
        currency=request.currency,
        token=request.token,
        idempotency_key=envelope.data["idempotencyKey"],
        answer=asked.answer,
    )
    if outcome.decline_code == payments.KEY_SPENT:
        # The key will never tell what its request did: the provider's record does. What it shows
        # authorized is the checkout's authorization; while it cannot tell yet, no reply, and the saga
        # asks again at the step's deadline (a re-send replays the spent key's outcome, then reads the
        # record again). Its last ask unwinds the checkout, and the reversal voids what is found.
        found, waiting = payments.payment_authorization_from_record(
            order_id=order_id, amount=request.amount, currency=request.currency, record=asked.record
        )
        if waiting is not None:
            logger.warning("payment_authorization_awaits_provider_record", order_id=str(order_id), why=waiting)
            return
        outcome = found or outcome
    if outcome.status == PaymentStatus.AUTHORIZED:
        _reply(events.AUTHORIZATION_SUCCEEDED, order_id, outcome, amount=f"{request.amount:.2f}")
    else:
        # No answer (this time): an earlier call with the key, or this one, may have authorized.
        _reply(events.AUTHORIZATION_FAILED, order_id, outcome, mayBeAuthorized=outcome.provider_unavailable)


@subscriber(PAYMENT_CAPTURE_REQUESTED, consumer="payments.checkout.capture", context=ALIAS)
def capture_for_checkout(envelope: Envelope) -> None:
    order_id = uuid.UUID(envelope.data["orderId"])
    try:
        outcome = payments.payment_capture(order_id=order_id, idempotency_key=envelope.data["idempotencyKey"])
    except payments.PaymentError as exc:
        _reply(events.CAPTURE_FAILED, order_id, None, declined=False, message=str(exc))
        return
    ok = outcome.status == PaymentStatus.CAPTURED
    _reply(events.CAPTURE_SUCCEEDED if ok else events.CAPTURE_FAILED, order_id, outcome)


@subscriber(PAYMENT_REVERSAL_REQUESTED, consumer="payments.checkout.reverse", context=ALIAS)
def reverse_for_checkout(envelope: Envelope) -> None:
    """Void an authorization, refund a capture, or do nothing if no money moved. An authorization
    whose answer never came back is asked for first (``_unanswered_authorization_settle``)."""
    order_id = uuid.UUID(envelope.data["orderId"])
    unsettled = _unanswered_authorization_settle(order_id)
    if unsettled is not None:
        return _not_reversed(order_id, unsettled)
    reversal = payments.payment_reverse(order_id=order_id, reason=envelope.data["reason"])
    if not reversal.confirmed:
        return _not_reversed(order_id, reversal)
    _reply(events.REVERSED, order_id, None, outcome=reversal.done)


def _unanswered_authorization_settle(order_id: uuid.UUID) -> payments.PaymentReversal | None:
    """Learn what the checkout's authorization did before reversing, while the order still holds
    its card token (the saga keeps it until the checkout ends when the answer was lost).

    Every attempt can time out while the provider authorizes all the same (Stripe finishes a
    request its client gave up on), or the saga can stop waiting for a reply that was lost: the
    order is then unwound with an authorization on the card that we never recorded, so there
    was nothing to void. Asked again with the checkout's own key and arguments, the provider
    answers what that request did (Stripe keeps a key's answer for 24 hours) or, if it never
    arrived, authorizes now; either way the authorization is recorded here, and voided next
    with the rest. An answer already recorded is replayed by the idempotency log without a call.
    A failure the provider answered (``processing_error``) says what the key did: nothing. Another
    copy of the command holding our claim records and replies what it gets, and the saga voids that
    late authorization. No answer again, or the key in use at the provider (409): the reversal
    waits for the saga's next ask (``_not_reversed``), like a void during an outage. A key that
    can no longer tell, because the provider replays a 5xx to it (Stripe keeps a key's first
    response, 500s included) or has forgotten it (24 hours), is not asked: the provider's search
    for the order's authorizations is (``_lost_authorization_find``). Returns why the reversal
    must wait, or None."""
    request = orders.order_payment_request_get(order_id=order_id)
    if request is None or not request.token:
        return None  # the checkout ended (the token is erased then): what it made is recorded
    if _provider_forgot_key(request):
        # Asked again, a provider that has forgotten the key would authorize anew, not say what the
        # lost request did.
        return _lost_authorization_find(request)
    try:
        outcome = payments.payment_authorize(
            order_id=order_id,
            amount=request.amount,
            currency=request.currency,
            token=request.token,
            idempotency_key=payments.order_payment_key(order_id=order_id, action="authorize"),
        )
    except payments.ProviderKeyInUse as exc:
        waiting = str(exc)
    else:
        if outcome.decline_code == payments.KEY_SPENT:
            return _lost_authorization_find(request)
        if not outcome.provider_unavailable:
            return None
        waiting = outcome.message
    return payments.PaymentReversal("NONE", False, waiting, provider_unavailable=True)


def _lost_authorization_find(request: orders.PaymentRequest) -> payments.PaymentReversal | None:
    """The provider's search for the order's authorizations, each one found recorded for the reversal
    to void. Why the reversal must wait (no answer, or nothing found while the provider may still be
    indexing what the key's request made), or None."""
    waiting = payments.payment_provider_reconcile(
        order_id=request.order_id, amount=request.amount, currency=request.currency
    )
    if waiting is not None:
        return payments.PaymentReversal("NONE", False, waiting, provider_unavailable=True)
    return None


def _not_reversed(order_id: uuid.UUID, reversal: payments.PaymentReversal) -> None:
    """No reply while the money has not moved back: the saga re-asks at its step deadline, with
    growing deadlines, and after its attempts ends FAILED for staff to see while it keeps re-asking.

    The delivery itself ends here, and commits what the reversal learned on the way: a capture
    found in the provider's record, a refund recorded. Failing it (so that it was retried, then
    parked as a dead letter) rolled that back with it: a refund refused for a disputed charge,
    after the reversal had learned the payment was captured, left it AUTHORIZED here for good
    while the provider held the money, and staff's refund hidden. Retried at once it would only
    replay the same answers (the payments log keeps a refusal per key) or, with the provider down
    (after the gateway's retries, or the circuit open), use up its attempts during an outage."""
    if reversal.provider_unavailable:
        logger.warning("reversal_deferred_to_saga", order_id=str(order_id), message=reversal.message)
    else:
        logger.error("reversal_refused", order_id=str(order_id), done=reversal.done, message=reversal.message)
