"""Writes of the payments context: each function is one use case in one transaction on its alias.

Every command carries an idempotency key and goes through the idempotency log (spec section
7): the first call claims the key, calls the provider (with the same key, so the provider
deduplicates too) and stores its outcome in the same transaction as the payment rows. A
repeat returns the stored outcome and never reaches the provider. Transient failures are
*not* stored: the claim is released, so a retry with the same key tries again.

The checkout's authorization asks the provider first (``payment_authorization_ask``, outside any
transaction) and records its answer in the delivery's transaction (``payment_authorize(...,
answer=...)``): a slow provider then holds a thread, not one of PostgreSQL's connections, for the
length of the call. A repeat of that command does reach the provider, with the same key, and the
provider answers with its first result; the log still decides what is recorded and replied. A
repeat that arrives while the first call still runs is refused by the provider
(``ProviderKeyInUse``, Stripe's 409): its delivery fails and is retried, as the claim used to
make it wait for the first.

Capture, void and refund hold the payment's row lock across the provider call: commands on
one payment are serialized, so two refunds can never both pass the "not more than captured"
check.
"""

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.payments import events
from apps.payments.errors import (
    IdempotencyKeyReused,
    PaymentError,
    PaymentNotFound,
    PaymentStateError,
    RefundExceedsCaptured,
)
from apps.payments.gateway import (
    UNEXPECTED_STATE,
    GatewayUnavailable,
    PaymentDeclined,
    PermanentGatewayError,
    ProviderKeyInUse,
    ProviderKeySpent,
    ProviderResult,
    get_gateway,
    guarded,
)
from apps.payments.models import IdempotencyLog, Payment, PaymentEvent, PaymentStatus, ProviderWebhookEvent
from shop.api import idempotency
from shop.db import insert_objects, insert_row, select_objects, update_object
from shop.events import publish

ALIAS = "payments"
logger = structlog.get_logger("apps.payments")
FAILED = PaymentStatus.FAILED
_SETTLED = (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)
# The decline code of a FAILED payment whose authorization key the provider answers with a kept 5xx
# (``ProviderKeySpent``): no answer, ever, from that key; ``payment_provider_reconcile`` asks the
# provider's search instead. The row's ``created_at`` is when we learned the key was spent.
KEY_SPENT = "provider_key_spent"
_SPENT_MESSAGE = "The payment provider failed on this request; whatever it made is found by its search."


@dataclass(frozen=True)
class Outcome:
    payment_id: uuid.UUID | None
    status: str
    declined: bool
    decline_code: str | None
    message: str
    # No answer from the provider (after the retries, or with the circuit open): the same request may
    # be made again later, with the same key. Nothing is known of what it did: an authorization it made
    # and we never heard of is asked for again with the key (``checkout._unanswered_authorization_settle``).
    provider_unavailable: bool = False
    # The stored answer of an earlier call with the same key (``_once``): this call changed nothing.
    replayed: bool = False

    def to_json(self) -> str:
        # ``replayed`` is said of an answer, never stored: a record with it would fail a process of the
        # previous release reading it during a rolling deploy.
        stored = {name: value for name, value in vars(self).items() if name != "replayed"}
        return json.dumps({**stored, "payment_id": str(self.payment_id) if self.payment_id else None})

    @classmethod
    def from_json(cls, text: str) -> "Outcome":
        raw = json.loads(text)
        return cls(**{**raw, "payment_id": uuid.UUID(raw["payment_id"]) if raw["payment_id"] else None})


def _unavailable(why: str, payment: Payment | None = None, *, code: str | None = None) -> Outcome:
    """No answer; ``code`` KEY_SPENT when none will ever come from the call's key."""
    logger.warning(
        "payment_provider_unavailable", error=why, code=code, payment_id=str(payment.id) if payment else None
    )
    return Outcome(
        payment.id if payment else None, FAILED, False, code, "Payment provider unavailable; retry later.", True
    )


def _current(payment: Payment, message: str) -> Outcome:
    return Outcome(payment.id, payment.status, False, None, message)


def _once(operation: str, key: str, request: dict, attempt: Callable[[Callable[[Outcome], None]], Outcome]) -> Outcome:
    """Run ``attempt(remember)`` at most once per key; ``remember`` stores the outcome in the caller's transaction."""
    try:
        owned = idempotency.claim(
            IdempotencyLog,
            using=ALIAS,
            scope=operation,
            key=key,
            request_hash=idempotency.fingerprint(request),
            ttl=timedelta(hours=settings.PAYMENT_IDEMPOTENCY_TTL_HOURS),
        )
    except idempotency.IdempotencyKeyReused:
        raise IdempotencyKeyReused(f"Idempotency key {key!r} was used for a different {operation}")
    except idempotency.IdempotencyKeyInUse:  # another copy of the command is at the provider now
        return Outcome(None, FAILED, False, None, "The same request is still in progress; retry later.")
    if owned.completed is not None:
        logger.info("payment_idempotent_replay", operation=operation, key=key)
        return dataclasses.replace(Outcome.from_json(owned.completed.response_body), replayed=True)

    remembered = False

    def remember(outcome: Outcome) -> None:
        nonlocal remembered
        idempotency.complete(
            IdempotencyLog, using=ALIAS, record_id=owned.record_id, response_status=200, response_body=outcome.to_json()
        )
        remembered = True

    outcome = None
    try:
        outcome = attempt(remember)
    finally:
        if outcome is None or (outcome.status == FAILED and not outcome.declined and not remembered):
            idempotency.release(IdempotencyLog, using=ALIAS, record_id=owned.record_id)
        elif not remembered:  # a final answer that changed no payment row
            with transaction.atomic(using=ALIAS, savepoint=False):
                remember(outcome)
    return outcome


def _call_provider(payment: Payment, fn, **kwargs) -> ProviderResult | Outcome:
    """The provider's result, or the Outcome to return when there is none. Our claim holds the key,
    so a key in use at the provider is our own earlier attempt, cut off by our timeout and still
    running there: no answer yet, as when the provider is unavailable (retry with the key later).
    A spent key (a kept 5xx) is no answer either, ever: ``payment_provider_reconcile`` can tell."""
    try:
        return guarded(fn, **kwargs)
    except (GatewayUnavailable, ProviderKeyInUse) as exc:
        return _unavailable(str(exc), payment)
    except ProviderKeySpent as exc:
        return _unavailable(str(exc), payment, code=KEY_SPENT)
    except PermanentGatewayError as exc:
        logger.error("payment_provider_refused", payment_id=str(payment.id), code=exc.code, error=str(exc))
        return Outcome(payment.id, FAILED, True, exc.code, f"The payment provider refused: {exc}")


def _record(payment: Payment, type: str, amount: Decimal, result: ProviderResult | None, **data) -> None:
    """Ledger row + domain event, inside the caller's transaction."""
    insert_row(
        PaymentEvent,
        using=ALIAS,
        payment=payment,
        type=type,
        amount=amount,
        provider_reference=result.reference if result else "",
        data=data,
    )
    publish(
        events.EVENT_FOR_LEDGER_TYPE[type],
        {
            "paymentId": payment.id,
            "orderId": payment.order_id,
            "status": payment.status,
            "amount": _money(amount),
            "currency": payment.currency,
            "capturedAmount": _money(payment.captured_amount),
            "refundedAmount": _money(payment.refunded_amount),
            "declineCode": payment.decline_code or None,
        },
        aggregate_id=payment.id,
        using=ALIAS,
    )


def _money(amount: Decimal) -> Decimal:
    return Decimal(amount).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class ProviderAnswer:
    """What the provider answered to an authorization, as a value: its result, or why there is
    none (``failure``): "declined"; "refused" for a permanent error; "failed" when its last answer
    was that the request failed with nothing done, worth another try (``processing_error``);
    "unavailable" when no answer came, after the retries or with the circuit open; "spent" when
    the provider replays a 5xx to the key (``ProviderKeySpent``): no answer will ever come."""

    result: ProviderResult | None = None
    failure: str = ""
    code: str = ""
    message: str = ""


def payment_authorization_ask(
    *, order_id: uuid.UUID, amount: Decimal, currency: str, token: str, idempotency_key: str
) -> ProviderAnswer:
    """Ask the provider to authorize without touching the payments database; record the answer
    with ``payment_authorize(..., answer=...)`` and the same arguments. Raises ``ProviderKeyInUse``
    while the provider still works on an earlier request with this key (another copy of the
    command, or our own attempt our timeout cut off): there is no answer yet, and answering FAILED
    would cancel an order the provider may be authorizing; the caller retries later."""
    try:
        return ProviderAnswer(
            result=guarded(
                get_gateway().authorize,
                amount=_money(amount),
                currency=currency.upper(),
                token=token,
                idempotency_key=idempotency_key,
                metadata={"order_id": str(order_id)},
            )
        )
    except PaymentDeclined as exc:
        return ProviderAnswer(failure="declined", code=exc.code, message=exc.message)
    except PermanentGatewayError as exc:
        return ProviderAnswer(failure="refused", code=exc.code, message=str(exc))
    except GatewayUnavailable as exc:
        return ProviderAnswer(failure="failed" if exc.answered else "unavailable", message=str(exc))
    except ProviderKeySpent as exc:
        return ProviderAnswer(failure="spent", code=KEY_SPENT, message=str(exc))


def payment_authorize(
    *,
    order_id: uuid.UUID,
    amount: Decimal,
    currency: str,
    token: str,
    idempotency_key: str,
    answer: ProviderAnswer | None = None,
) -> Outcome:
    """Authorize once per key. ``answer``: the provider's, asked beforehand for these arguments
    (``payment_authorization_ask``); without it the provider is asked here, after the claim.
    Raises ``ProviderKeyInUse`` as ``payment_authorization_ask`` does (the claim is released)."""
    asked = dict(order_id=order_id, amount=amount, currency=currency, token=token, idempotency_key=idempotency_key)
    amount, currency = _money(amount), currency.upper()
    token_hash = hashlib.sha256(token.encode()).hexdigest()  # the token itself is never stored
    request = {"order_id": order_id, "amount": amount, "currency": currency, "token": token_hash}

    def attempt(remember):
        payment = Payment(order_id=order_id, amount=amount, currency=currency, provider=get_gateway().name)
        said = answer if answer is not None else payment_authorization_ask(**asked)
        if said.failure == "unavailable":
            return _unavailable(said.message)
        if said.failure == "failed":  # not recorded: the claim is released (the provider replays this to the key)
            return Outcome(None, FAILED, False, None, "The payment provider could not process the card; try again.")
        if said.failure:  # declined, refused for good, or a spent key: final for the key, recorded
            spent = said.failure == "spent"  # not the card's fault: no decline in the ledger
            with transaction.atomic(using=ALIAS, savepoint=False):  # see _authorization_settle
                payment.status, payment.decline_code, payment.failure_message = FAILED, said.code, said.message[:300]
                insert_objects([payment], using=ALIAS)
                if spent:
                    logger.warning("payment_provider_key_spent", order_id=str(order_id), error=said.message)
                    outcome = Outcome(payment.id, FAILED, False, said.code, _SPENT_MESSAGE, provider_unavailable=True)
                else:
                    _record(payment, PaymentEvent.Type.DECLINED, amount, None, code=said.code)
                    outcome = Outcome(payment.id, FAILED, True, said.code, said.message)
                remember(outcome)
            return outcome
        result = said.result
        with transaction.atomic(using=ALIAS, savepoint=False):
            payment.status, payment.provider_reference = PaymentStatus.AUTHORIZED, result.reference
            insert_objects([payment], using=ALIAS)
            _record(payment, PaymentEvent.Type.AUTHORIZED, amount, result)
            outcome = _current(payment, "Payment authorized.")
            remember(outcome)
        return outcome

    return _once("authorize", idempotency_key, request, attempt)


# Our payments whose record at the provider may have moved on without our hearing of it: captured,
# voided or refunded by a call whose answer was lost.
_MAY_MOVE_AT_PROVIDER = (PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED)
# PaymentIntent statuses of a payment the provider is still working on: nothing to conclude yet.
_IN_PROGRESS = frozenset({"processing", "requires_action", "requires_confirmation"})


@dataclass(frozen=True)
class ProviderRecord:
    """The provider's records of an order's payments (``payment_provider_record_read``): what its search
    found (None: it refused to search) and each payment read by its id; ``waiting``: why nothing can
    be concluded from it (no answer, a refused read, a payment still in progress there)."""

    found: list[ProviderResult] | None = None
    current: tuple[ProviderResult, ...] = ()
    waiting: str | None = None


def payment_provider_record_read(*, order_id: uuid.UUID) -> ProviderRecord:
    """The provider calls of ``payment_provider_reconcile``, apart, so that a caller can make them
    before it opens a transaction: they may take several timeouts, and a delivery's transaction
    held open meanwhile holds a database connection and its batch."""
    gateway = get_gateway()
    try:
        found = guarded(gateway.find_authorizations, order_id=str(order_id))
    except (GatewayUnavailable, ProviderKeySpent) as exc:
        return ProviderRecord(waiting=_unavailable(str(exc)).message)
    except PermanentGatewayError as exc:  # waiting would not help: our own payments are still read
        logger.error("payment_provider_search_refused", order_id=str(order_id), code=exc.code, error=str(exc))
        found = None
    ours = Payment.objects.using(ALIAS).filter(order_id=order_id, status__in=_MAY_MOVE_AT_PROVIDER)
    references = {result.reference for result in found or ()} | {payment.provider_reference for payment in ours}
    try:
        current = tuple(guarded(gateway.payment_get, reference=reference) for reference in sorted(references))
    except (GatewayUnavailable, ProviderKeySpent) as exc:
        return ProviderRecord(found, waiting=_unavailable(str(exc)).message)
    except PermanentGatewayError as exc:
        logger.error("payment_provider_read_refused", order_id=str(order_id), code=exc.code, error=str(exc))
        return ProviderRecord(found, waiting=f"The provider refused to read a payment of the order: {exc}")
    if any(result.status in _IN_PROGRESS for result in current):
        return ProviderRecord(found, current, "A payment of the order is still in progress at the provider.")
    return ProviderRecord(found, current)


def payment_provider_reconcile(
    *, order_id: uuid.UUID, amount: Decimal, currency: str, record: ProviderRecord | None = None
) -> str | None:
    """Bring our record of the order's payments in line with the provider's own, for calls whose keys
    can no longer tell what they did: a key the provider answers with a kept 5xx (``KEY_SPENT``), or
    one older than it keeps (24 hours). The provider's search on the order id
    (``find_authorizations``) names its payments; each of them, and each payment we hold as
    AUTHORIZED or captured, is then read by its id (``payment_get``), because the search lags behind the
    provider's records, for changes as for new payments.

    * A payment the provider holds that we never recorded is recorded AUTHORIZED (for the reversal
      to void) or, captured, CAPTURED (to refund), at the provider's amount.
    * An AUTHORIZED payment the provider captured is recorded CAPTURED at the amount it received;
      one it cancelled, VOIDED.
    * A captured payment the provider has refunded more of than we recorded is brought up to its
      running total (``_refunded_total_record``, as its refund reports are).

    Returns why the caller must wait, or None once the records agree: no answer; a payment the
    provider is still working on; or the search found nothing while what a spent key's request made
    may not be indexed yet (less than ``PAYMENT_PROVIDER_SEARCH_LAG_SECONDS`` since we learned the
    key was spent; with no such record the key was forgotten, a day after the checkout, and
    everything is indexed). A provider that refuses the search (a permanent error: a restricted
    key, say) is logged as an error, and only our own payments are read; one that refuses to read
    a payment is logged too, and waited for. ``record``: the provider's record read beforehand, out of
    any transaction (``payment_provider_record_read``); without it, it is read here.
    """
    record = record or payment_provider_record_read(order_id=order_id)
    if record.waiting is not None:
        return record.waiting
    with transaction.atomic(using=ALIAS):  # the same lock order as _latest_for_order's
        payments = select_objects(Payment, using=ALIAS, lock=True, order_by=("-created_at",), order_id=order_id)
        recorded = {payment.provider_reference: payment for payment in payments if payment.provider_reference}
        for result in record.current:
            _record_difference(recorded.get(result.reference), result, order_id, amount, currency)
        if record.found == []:
            spent = [payment.created_at for payment in payments if payment.decline_code == KEY_SPENT]
            lag = timedelta(seconds=settings.PAYMENT_PROVIDER_SEARCH_LAG_SECONDS)
            if spent and timezone.now() - min(spent) < lag:
                return "Nothing found yet; the provider may not have indexed it."
    return None


def payment_authorization_from_record(
    *, order_id: uuid.UUID, amount: Decimal, currency: str, record: ProviderRecord | None = None
) -> tuple[Outcome | None, str | None]:
    """After the checkout's authorization key came back spent (a kept 5xx): the authorization the
    provider's record shows for the order, so that the checkout goes on with it instead of failing
    a customer whose card the provider did authorize. Returns ``(outcome, None)`` with the order's
    AUTHORIZED payment once ``payment_provider_reconcile`` has recorded it, ``(None, None)`` when the
    record shows none (the key's request made nothing), or ``(None, why)`` while the record cannot
    tell yet (no answer, a payment still in progress there, or nothing found before the provider can
    have indexed what the key's request made): the caller waits and asks again. ``record``: as
    ``payment_provider_reconcile``'s."""
    waiting = payment_provider_reconcile(order_id=order_id, amount=amount, currency=currency, record=record)
    if waiting is not None:
        return None, waiting
    payment = _latest_for_order(order_id)
    if payment is None or payment.status != PaymentStatus.AUTHORIZED or payment.amount != _money(amount):
        return None, None  # an authorization of another amount is not this checkout's: the reversal voids it
    logger.warning("payment_authorization_found_in_provider_record", order_id=str(order_id), payment_id=str(payment.id))
    return _current(payment, "Payment authorized, as the provider's record shows."), None


def _record_difference(payment: Payment | None, result: ProviderResult, order_id, amount, currency) -> None:
    """Record what the provider's record says of one of its payments, where ours differs."""
    money = _money(amount if result.amount is None else result.amount)
    before = None if payment is None else (payment.status, payment.refunded_amount)
    if payment is None and result.status in ("requires_capture", "succeeded"):
        captured = result.status == "succeeded"
        payment = Payment(
            order_id=order_id, amount=money, currency=currency.upper(), provider=get_gateway().name,
            status=PaymentStatus.CAPTURED if captured else PaymentStatus.AUTHORIZED,
            provider_reference=result.reference, captured_amount=money if captured else Decimal(0),
        )  # fmt: skip
        insert_objects([payment], using=ALIAS)
        _record(payment, PaymentEvent.Type.AUTHORIZED, money, result, found="provider record")
        if captured:
            _record(payment, PaymentEvent.Type.CAPTURED, money, result, found="provider record")
    elif payment is not None and payment.status == PaymentStatus.AUTHORIZED and result.status == "succeeded":
        payment.status, payment.captured_amount = PaymentStatus.CAPTURED, money
        update_object(payment, ["status", "captured_amount", "updated_at"], using=ALIAS)
        _record(payment, PaymentEvent.Type.CAPTURED, money, result, found="provider record")
    elif payment is not None and payment.status == PaymentStatus.AUTHORIZED and result.status == "canceled":
        payment.status = PaymentStatus.VOIDED
        update_object(payment, ["status", "updated_at"], using=ALIAS)
        _record(payment, PaymentEvent.Type.VOIDED, payment.amount, result, found="provider record")
    if payment is not None and payment.status in _SETTLED and result.refunded:
        _refunded_total_record(payment, result.refunded, found="provider record")
    if payment is not None and (payment.status, payment.refunded_amount) != before:
        logger.warning("payment_reconciled_from_provider", order_id=str(order_id), reference=result.reference,
                       status=payment.status)  # fmt: skip


def _latest_for_order(order_id: uuid.UUID, *, lock: bool = False, payment_id: uuid.UUID | None = None):
    """The order's latest payment that was not refused, or the one ``payment_id`` names; ``lock``: the
    order's payments locked until the transaction ends (the capture's hot path: one statement built
    once, ``shop.db``)."""
    found = select_objects(Payment, using=ALIAS, lock=lock, order_by=("-created_at",), order_id=order_id)
    wanted = (lambda p: p.id == payment_id) if payment_id else (lambda p: p.status != FAILED)
    return next((payment for payment in found if wanted(payment)), None)


def _locked(payment_id: uuid.UUID) -> Payment:
    payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
    if payment is None:
        raise PaymentNotFound(str(payment_id))
    return payment


def _authorization_settle(
    *, order_id: uuid.UUID, payment_id: uuid.UUID | None, idempotency_key: str, operation: str,
    done: tuple[str, ...], already: str, settle,
) -> Outcome:  # fmt: skip
    """What capture and void share: the order's latest authorization (or the payment ``payment_id``
    names), locked across the provider call. A payment in a ``done`` status is answered with its
    state (message ``already``), one that is not AUTHORIZED is a ``PaymentStateError``; otherwise
    ``settle(payment)`` calls the provider and, if it answered, updates the payment. A FAILED
    outcome changed nothing.

    ``savepoint=False``, here and in ``payment_authorize``: inside a checkout delivery these run in
    the delivery's transaction, where a savepoint costs two round trips. The refusal is decided
    under the lock but raised after the block has exited normally, so the caller's transaction
    stays usable for its reply; any other failure fails the delivery whole, which is retried."""

    def attempt(remember):
        refusal = None
        with transaction.atomic(using=ALIAS, savepoint=False):
            payment = _latest_for_order(order_id, lock=True, payment_id=payment_id)
            if payment is not None and payment.status in done:
                outcome = _current(payment, already)
            elif payment is None or payment.status != PaymentStatus.AUTHORIZED:
                refusal = PaymentStateError(payment, operation)
            else:
                outcome = settle(payment)
                if outcome.status == FAILED:
                    return outcome
            if refusal is None:
                remember(outcome)
        if refusal is not None:
            raise refusal
        return outcome

    return _once(operation, idempotency_key, {"order_id": order_id}, attempt)


def payment_capture(*, order_id: uuid.UUID, idempotency_key: str, payment_id: uuid.UUID | None = None) -> Outcome:
    gateway = get_gateway()

    def capture(payment: Payment) -> Outcome:
        result = _call_provider(
            payment, gateway.capture, reference=payment.provider_reference, amount=payment.amount,
            currency=payment.currency, idempotency_key=idempotency_key,
        )  # fmt: skip
        if isinstance(result, Outcome):
            return result
        # The provider's figure, not ours: what it received is what can be refunded.
        received = payment.amount if result.amount is None else _money(result.amount)
        if received != payment.amount:
            logger.warning(
                "payment_captured_amount_differs",
                payment_id=str(payment.id), requested=str(payment.amount), received=str(received),
            )  # fmt: skip
        payment.status, payment.captured_amount = PaymentStatus.CAPTURED, received
        update_object(payment, ["status", "captured_amount", "updated_at"], using=ALIAS)
        _record(payment, PaymentEvent.Type.CAPTURED, received, result)
        return _current(payment, "Payment captured.")

    return _authorization_settle(
        order_id=order_id, payment_id=payment_id, idempotency_key=idempotency_key, operation="capture", done=_SETTLED,
        already="Payment already captured.", settle=capture,
    )  # fmt: skip


def payment_capture_known(*, order_id: uuid.UUID, idempotency_key: str) -> Outcome:
    """Capture the order's authorization: the checkout's capture. If the provider replays a 5xx to
    the key, its record (``payment_provider_reconcile``) says what became of the payment: captured
    or cancelled, it is recorded so; still awaiting capture, the capture is asked again under a new
    key, which is safe: the provider refuses to capture a payment twice."""
    return _settled_by_record(
        payment_capture, order_id=order_id, idempotency_key=idempotency_key, done=PaymentStatus.CAPTURED
    )


def _settled_by_record(settle, *, order_id: uuid.UUID, idempotency_key: str, done: str) -> Outcome:
    """``settle`` (``payment_capture`` or ``payment_void``) with the key; if the provider replays a 5xx
    to it, settled by the provider's record (``_again_after_spent_key``), on the payment it was for."""
    outcome = settle(order_id=order_id, idempotency_key=idempotency_key)
    if outcome.decline_code != KEY_SPENT:
        return outcome
    payment = _latest_for_order(order_id)  # the one the call acted on; the search may add a newer one

    def again(suffix: str) -> Outcome:
        return settle(order_id=order_id, idempotency_key=idempotency_key + suffix, payment_id=payment.id)

    return _again_after_spent_key(payment, again, done=done, still=_authorized)


def _as_the_provider_records(payment: Payment) -> tuple[Payment, str | None]:
    """After a call on ``payment`` whose key the provider answers with a kept 5xx, or a refund it refused:
    the payment once ``payment_provider_reconcile`` has brought it in line with the provider's record,
    and why to wait (None: it is in line)."""
    waiting = payment_provider_reconcile(order_id=payment.order_id, amount=payment.amount, currency=payment.currency)
    return Payment.objects.using(ALIAS).get(pk=payment.id), waiting


def _authorized(payment: Payment) -> bool:
    return payment.status == PaymentStatus.AUTHORIZED


def _refundable(payment: Payment) -> bool:
    return payment.refundable > 0


def _again_after_spent_key(
    payment: Payment,
    again: Callable[[str], Outcome],
    *,
    done: str,
    still: Callable[[Payment], bool],
    after: str = "500",
    waiting_code: str | None = KEY_SPENT,
) -> Outcome:
    """After a call on ``payment`` whose key the provider answers with a kept 5xx: what the provider's
    record says of the payment, and the call made once more under a new key while the record shows
    it still to do (``still``: an authorization still to capture or void, money still to refund).
    Only for calls the provider refuses to carry out twice on one payment whichever key asks: a
    capture, a void, a refund of everything left (it refuses to refund more than it received; a
    refund the record shows partly made is made again for the rest). ``again(suffix)`` makes the
    call with the original key plus ``suffix``. Whatever that call answers short of ``done``, the
    record is read again. Returns the payment as the record says, the new call's own refusal, or no
    answer (wait, ``waiting_code``) while the record shows the call still to do. ``after`` names what
    sent us to the record in the new key's suffix (a void refused for the payment's state uses it
    too: ``payment_void_known``). A refusal for the payment's state
    (``UNEXPECTED_STATE``) while the record says the state allows the call is the record behind a
    concurrent call, never an answer: it is waited on too."""
    payment, waiting = _as_the_provider_records(payment)
    if waiting is None and still(payment):  # the spent key's call did not happen, or not wholly
        outcome = again(f":after-{after}:{uuid.uuid4().hex}")
        if outcome.status == done or not (outcome.declined or outcome.decline_code == KEY_SPENT):
            return outcome
        payment, waiting = _as_the_provider_records(payment)
        if waiting is None and still(payment) and outcome.declined and outcome.decline_code != UNEXPECTED_STATE:
            return outcome  # refused for a reason the record does not explain: the refusal is the answer
    if waiting is not None or still(payment):
        return _unavailable(waiting or "The provider's record shows the call still to do.", payment, code=waiting_code)
    return _current(payment, "Payment state as the provider's record says.")


def payment_void_known(*, order_id: uuid.UUID, idempotency_key: str) -> Outcome:
    """Void the order's authorization, for a reversal. If the provider replays a 5xx to the void's key,
    its record (``payment_provider_reconcile``) says what became of the payment: cancelled or
    captured, it is recorded so (a capture is then refunded); still awaiting capture, the void is
    asked again under a new key, which is safe: the provider refuses to void a payment twice.

    A void refused because the provider's payment is no longer an authorization
    (``UNEXPECTED_STATE``) is settled by that record too. Captured on a call whose answer we lost
    (the fault campaign saw a worker killed after the provider captured and before our commit), the
    payment is recorded CAPTURED at the amount it received, for the reversal to refund; cancelled
    without us (staff in the provider's dashboard, or its own expiry of an authorization never
    captured: Stripe's is seven days), VOIDED. Asking the capture again with the checkout's key, as
    the reversal did before, answered the first case only: in the second the provider refused that
    too, and the order waited for good with the payment AUTHORIZED here. While the record still
    shows the authorization (behind a concurrent call) the void is asked again under a new key, and
    waits if refused again: nothing is captured to be refunded later."""
    outcome = _settled_by_record(
        payment_void, order_id=order_id, idempotency_key=idempotency_key, done=PaymentStatus.VOIDED
    )
    if outcome.decline_code != UNEXPECTED_STATE:
        return outcome
    payment = _latest_for_order(order_id)

    def again(suffix: str) -> Outcome:
        return payment_void(order_id=order_id, idempotency_key=idempotency_key + suffix, payment_id=payment.id)

    return _again_after_spent_key(
        payment, again, done=PaymentStatus.VOIDED, still=_authorized, after="refusal", waiting_code=None
    )


def payment_void(*, order_id: uuid.UUID, idempotency_key: str, payment_id: uuid.UUID | None = None) -> Outcome:
    gateway = get_gateway()

    def void(payment: Payment) -> Outcome:
        result = _call_provider(
            payment, gateway.void, reference=payment.provider_reference, idempotency_key=idempotency_key
        )
        if isinstance(result, Outcome):
            return result
        payment.status = PaymentStatus.VOIDED
        update_object(payment, ["status", "updated_at"], using=ALIAS)
        _record(payment, PaymentEvent.Type.VOIDED, payment.amount, result)
        return _current(payment, "Payment voided.")

    return _authorization_settle(
        order_id=order_id, payment_id=payment_id, idempotency_key=idempotency_key, operation="void",
        done=(PaymentStatus.VOIDED,),
        already="Payment already voided.", settle=void,
    )  # fmt: skip


def payment_refund(*, payment_id: uuid.UUID, amount: Decimal | None, reason: str, idempotency_key: str) -> Outcome:
    """Refund ``amount`` (None: everything still refundable) of a captured payment."""
    amount = None if amount is None else _money(amount)
    if amount is not None and amount <= 0:
        raise PaymentError("A refund amount must be positive")
    gateway = get_gateway()
    request = {"payment_id": payment_id, "amount": amount, "reason": reason}

    def attempt(remember):
        with transaction.atomic(using=ALIAS):
            payment = _locked(payment_id)
            if payment.status not in _SETTLED:
                raise PaymentStateError(payment, "refund")
            value = payment.refundable if amount is None else amount
            if value > payment.refundable:
                raise RefundExceedsCaptured(payment.refundable)
            if value == 0:
                outcome = _current(payment, "Nothing left to refund.")
            else:
                result = _call_provider(
                    payment, gateway.refund, reference=payment.provider_reference, amount=value,
                    currency=payment.currency, idempotency_key=idempotency_key,
                )  # fmt: skip
                if isinstance(result, Outcome):
                    return result
                # By the provider's running total when it gives one: a refund its report or record
                # already counted (a lost answer, then a retry of the key replaying it) counts nothing,
                # and refunds it made that we had not heard of (its dashboard) are recorded as its own.
                expected = payment.refunded_amount + value
                total = expected if result.refunded is None else result.refunded
                if total > expected:
                    _refunded_at_provider(payment, total - value, source=payment.provider)
                _refunded_total_record(payment, total, result, reason=reason)
                outcome = _current(payment, f"Refunded {value} {payment.currency}.")
            remember(outcome)
        return outcome

    return _once("refund", idempotency_key, request, attempt)


def payment_refund_known(*, payment_id: uuid.UUID, reason: str, key_prefix: str, refunded_seen: Decimal) -> Outcome:
    """Refund everything still refundable of a captured payment: a reversal's refund, and staff's
    "refund everything still refundable". Keyed ``<key_prefix>:<refunded_seen>``, by the amount the
    caller's read of our record showed refunded: a refund learnt of between two asks makes a new key
    for the rest, and a double submit of the same state refunds once. If the provider replays a 5xx to
    the key, its record of the payment says how much it has refunded: that running total is recorded,
    and whatever is still unrefunded is refunded under a new key; so it is when the provider refuses
    the refund and its record shows more refunded than ours (``_rest_refunded_after_refusal``). Safe
    for this refund, not for a partial one: the provider refuses to refund more than it received, so
    two refunds of everything cannot both go through."""

    def refund(suffix: str = "") -> Outcome:
        key = f"{key_prefix}:{refunded_seen}{suffix}"
        return payment_refund(payment_id=payment_id, amount=None, reason=reason, idempotency_key=key)

    outcome = refund()
    if outcome.decline_code == KEY_SPENT:
        payment = Payment.objects.using(ALIAS).get(pk=payment_id)
        return _again_after_spent_key(payment, refund, done=PaymentStatus.REFUNDED, still=_refundable)
    if outcome.declined and outcome.status != PaymentStatus.REFUNDED:
        return _rest_refunded_after_refusal(payment_id, refund, refusal=outcome, seen=refunded_seen)
    return outcome


def _rest_refunded_after_refusal(
    payment_id: uuid.UUID, refund: Callable[[str], Outcome], *, refusal: Outcome, seen: Decimal
) -> Outcome:
    """A refusal to refund everything our record shows left is most often the provider having refunded
    more than we recorded: a refund made in its dashboard whose report (webhook) has not arrived, or
    never will. Its record says (``payment_provider_reconcile``, which records its running total as the
    report would), and the rest, if any, is refunded at once under a key of its own instead of waiting
    for the report. ``seen``: what the caller's read of our record showed refunded before the refused
    call, so a report recorded meanwhile counts as an explanation too. Nothing left: refunded. A refusal the record does
    not explain (no more refunded than ``seen``, or no answer) is the answer."""
    payment, waiting = _as_the_provider_records(Payment.objects.using(ALIAS).get(pk=payment_id))
    if waiting is not None:
        return refusal
    if not _refundable(payment):
        return _current(payment, "Refunded, as the provider's record says.")
    if payment.refunded_amount <= seen:
        return refusal
    logger.warning(
        "payment_refund_refusal_explained_by_provider_record",
        payment_id=str(payment_id),
        recorded=str(seen),
        provider=str(payment.refunded_amount),
    )
    return refund(f":rest-after-refusal:{payment.refunded_amount}")


def refundable_payment_for_order(order_id: uuid.UUID) -> uuid.UUID:
    payment = Payment.objects.filter(order_id=order_id, status__in=_SETTLED).order_by("-created_at").first()
    if payment is None:
        raise PaymentStateError(_latest_for_order(order_id), "refund")
    return payment.id


# --- the provider's own reports (webhooks) ------------------------------------------------------

DUPLICATE = "duplicate"


@dataclass(frozen=True)
class ProviderReport:
    """What a provider's webhook says happened to one of its payments, in our terms."""

    event_id: str
    type: str  # the provider's event type, e.g. "charge.refunded"
    reference: str  # the provider's payment id (our Payment.provider_reference)
    ledger_type: str | None  # PaymentEvent.Type to record; None: nothing to record
    amount: Decimal  # refunds: the provider's running total refunded; disputes: the disputed amount
    details: dict


def provider_report_record(*, provider: str, report: ProviderReport) -> str:
    """Record a provider-side refund or dispute once per provider event id; returns the outcome.

    Refunds are reconciled by the provider's running total: a refund made through our API is
    already counted (its webhook is a no-op), one made in the provider's dashboard adds the
    difference to the ledger and to ``refunded_amount`` and publishes ``payment.refunded``.
    Disputes go to the ledger for staff; the payment's status is left as it is.
    """
    with transaction.atomic(using=ALIAS):
        try:
            with transaction.atomic(using=ALIAS):
                seen = ProviderWebhookEvent.objects.create(
                    provider=provider, event_id=report.event_id, type=report.type
                )
        except IntegrityError:
            return DUPLICATE
        payment = (
            Payment.objects.select_for_update().filter(provider=provider, provider_reference=report.reference).first()
            if report.reference
            else None
        )
        if report.ledger_type is None:
            outcome = "ignored"
        elif payment is None:
            outcome = "unknown payment"
            logger.warning("provider_event_unknown_payment", event_id=report.event_id, reference=report.reference)
        elif report.ledger_type == PaymentEvent.Type.REFUNDED:
            outcome = _provider_refund(payment, report)
        else:
            PaymentEvent.objects.create(
                payment=payment, type=report.ledger_type, amount=_money(report.amount),
                data={"source": provider, "event": report.event_id, **report.details},
            )  # fmt: skip
            outcome = f"recorded {report.ledger_type}"
        seen.outcome = outcome
        seen.save(update_fields=["outcome"])
    return outcome


def _provider_refund(payment: Payment, report: ProviderReport) -> str:
    missing = _refunded_at_provider(payment, report.amount, source=payment.provider, event=report.event_id)
    return f"refunded {missing}" if missing else "already recorded"


def _refunded_at_provider(payment: Payment, total: Decimal, **data) -> Decimal:
    """Refunds the provider made that we did not ask for (its dashboard), up to its running total."""
    missing = _refunded_total_record(payment, total, **data)
    if missing:
        logger.warning("payment_refunded_at_provider", payment_id=str(payment.id), amount=str(missing))
    return missing


def _refunded_total_record(payment: Payment, total: Decimal, result: ProviderResult | None = None, **data) -> Decimal:
    """Bring a locked, captured payment up to the provider's running total refunded: after our refund
    (its answer), a refund made in its dashboard (its report) or on a call whose answer we lost (its
    record). Compared, never added, so one refund is counted once whichever of these tells of it
    first. Returns the difference recorded (0: nothing was missing)."""
    total = min(_money(total), payment.captured_amount)
    missing = total - payment.refunded_amount
    if missing <= 0:
        return Decimal(0)
    payment.refunded_amount = total
    fully = payment.refunded_amount == payment.captured_amount
    payment.status = PaymentStatus.REFUNDED if fully else PaymentStatus.PARTIALLY_REFUNDED
    update_object(payment, ["status", "refunded_amount", "updated_at"], using=ALIAS)
    _record(payment, PaymentEvent.Type.REFUNDED, missing, result, **data)
    return missing
