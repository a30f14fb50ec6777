"""The checkout saga's state machine.

Forward:      RESERVE_STOCK → AUTHORIZE_PAYMENT → (order CONFIRMED) CAPTURE_PAYMENT → COMPLETED
Compensation: REVERSE_PAYMENT (void / refund) → RELEASE_STOCK → order CANCELLED → COMPENSATED

Every function runs inside the orders transaction of the handler that received a reply
(``shop.events.inbox`` wraps it), locks the saga row (``apps.orders.locks``: the saga's row
before the order's), and is idempotent: a duplicate or late
reply either changes nothing or triggers the undo it calls for (a late authorization after
compensation is voided). Commands are published through the outbox in the same commit as
the state change, so a crash can never leave a saga advanced without its command sent.
"""

import functools
import threading
import time
from datetime import timedelta
from decimal import Decimal

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.orders import locks
from apps.orders import services as order_services
from apps.orders.models import Order, OrderStatus
from apps.orders.saga import commands
from apps.orders.saga.models import CheckoutSaga, SagaStatus, SagaStep, SagaStepLog
from apps.payments import facade as payments
from shop.db import insert_objects, select_object, update_object
from shop.events import publish
from shop.observability import metrics, tracing

ALIAS = "orders"
logger = structlog.get_logger("orders.saga")


class Reason:
    OUT_OF_STOCK = "OUT_OF_STOCK"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    CUSTOMER_REQUEST = "CUSTOMER_REQUEST"
    CHECKOUT_TIMEOUT = "CHECKOUT_TIMEOUT"


def _step_timeout() -> timedelta:
    return timedelta(seconds=settings.SAGA_STEP_TIMEOUT_SECONDS)


def _awaiting(order_id, status: str, step: str) -> CheckoutSaga | None:
    """The locked saga if it is waiting for exactly this reply; None makes the reply a no-op."""
    saga = locks.saga_lock(order_id)
    if saga is None or saga.status != status or saga.current_step != step:
        return None
    return saga


class _StepLogRows(threading.local):
    def __init__(self) -> None:
        self.depth = 0  # entry points (``_step_log_written_once``) running in this thread
        self.rows: list[SagaStepLog] = []


_step_log = _StepLogRows()


def _step_log_written_once(entry_point):
    """The step-log rows an entry point writes (a step's SUCCEEDED and the next one's SENT, say)
    are inserted as one statement when it returns, not one each: three statements fewer per
    checkout. If it raises, its transaction rolls back, rows and all. Outside an entry point
    ``_log`` inserts at once."""

    @functools.wraps(entry_point)
    def run(*args, **kwargs):
        _step_log.depth += 1
        try:
            result = entry_point(*args, **kwargs)
            if _step_log.depth == 1 and _step_log.rows:
                insert_objects(_step_log.rows, using=ALIAS)
            return result
        finally:
            _step_log.depth -= 1
            if not _step_log.depth:
                _step_log.rows = []

    return run


def _log(saga: CheckoutSaga, outcome: str, detail: str = "", step: str | None = None) -> None:
    row = SagaStepLog(
        saga=saga, step=step or saga.current_step, attempt=max(saga.step_attempts, 1), outcome=outcome, detail=detail
    )
    if _step_log.depth:
        _step_log.rows.append(row)
    else:
        insert_objects([row], using=ALIAS)
    # The same fact in the log stream, with the correlation and trace ids: on call, "where is
    # order X?" is answered from the logs without opening the admin.
    logger.info("saga_step", order_id=str(saga.order_id), step=step or saga.current_step, outcome=outcome)


def _save(saga: CheckoutSaga) -> None:
    fields = ["status", "current_step", "data", "cancel_reason", "step_attempts", "deadline", "updated_at"]
    update_object(saga, fields, using=ALIAS)


def _payment_key(order_id, action: str) -> str:
    return payments.order_payment_key(order_id=order_id, action=action)


# --- sending the command of a step ---------------------------------------------------------------


def _send_step_command(saga: CheckoutSaga, order: Order, lines=None) -> None:
    """Publish the command of ``saga.current_step`` (first attempt or a retry after a timeout).
    ``lines``: the order's items when the caller already holds them (the order was just written)."""
    step = saga.current_step
    oid = str(saga.order_id)
    if step == SagaStep.RESERVE_STOCK:
        lines = order.items.all() if lines is None else lines
        items = [{"productId": str(i.product_id), "quantity": i.quantity} for i in lines]
        publish(commands.STOCK_RESERVATION_REQUESTED, {"orderId": oid, "items": items}, aggregate_id=oid, using=ALIAS)
    elif step == SagaStep.AUTHORIZE_PAYMENT:
        saga.data["paymentAttempted"] = True
        publish(
            commands.PAYMENT_AUTHORIZATION_REQUESTED,
            {"orderId": oid, "idempotencyKey": _payment_key(oid, "authorize")},
            aggregate_id=oid,
            using=ALIAS,
        )
    elif step == SagaStep.CAPTURE_PAYMENT:
        publish(
            commands.PAYMENT_CAPTURE_REQUESTED,
            {"orderId": oid, "idempotencyKey": _payment_key(oid, "capture")},
            aggregate_id=oid,
            using=ALIAS,
        )
    elif step == SagaStep.REVERSE_PAYMENT:
        publish(
            commands.PAYMENT_REVERSAL_REQUESTED,
            {"orderId": oid, "reason": saga.cancel_reason or "COMPENSATION"},
            aggregate_id=oid,
            using=ALIAS,
        )
    elif step == SagaStep.RELEASE_STOCK:
        publish(commands.STOCK_RELEASE_REQUESTED, {"orderId": oid}, aggregate_id=oid, using=ALIAS)
    _log(saga, "SENT")


def _leave_step(saga: CheckoutSaga) -> None:
    """Observe how long the step being left took (step latency by step, on the dashboard)."""
    started = saga.data.pop("stepStartedAt", None)
    if started is not None:
        metrics.saga_step_duration.labels(saga.current_step).observe(max(0.0, time.time() - started))


def _ended(saga: CheckoutSaga, outcome: str) -> None:
    _leave_step(saga)
    metrics.saga_outcomes.labels(outcome).inc()
    metrics.saga_duration.labels(outcome.split(":", 1)[0]).observe((timezone.now() - saga.created_at).total_seconds())


def _enter(saga: CheckoutSaga, order: Order, step: str) -> None:
    _leave_step(saga)
    saga.data["stepStartedAt"] = time.time()
    saga.current_step = step
    saga.step_attempts = 1
    saga.deadline = timezone.now() + _step_timeout()
    with tracing.span(f"saga.step {step}", order_id=str(saga.order_id)):  # the command's deliveries nest here
        _send_step_command(saga, order)
    _save(saga)


# --- ending ----------------------------------------------------------------------------------------


def _complete(saga: CheckoutSaga) -> None:
    _ended(saga, "completed")
    saga.status = SagaStatus.COMPLETED
    saga.current_step = SagaStep.DONE
    saga.deadline = None
    _log(saga, "COMPLETED", step=SagaStep.DONE)
    _save(saga)


def _compensate(saga: CheckoutSaga, order: Order, reason: str) -> None:
    """Start undoing, newest first: payment, then stock, then the order itself."""
    if saga.status != SagaStatus.COMPENSATING:
        saga.status = SagaStatus.COMPENSATING
        saga.cancel_reason = saga.cancel_reason or reason
        _log(saga, "COMPENSATING", reason)
    if saga.data.get("paymentAttempted") and not saga.data.get("paymentReversed"):
        _enter(saga, order, SagaStep.REVERSE_PAYMENT)
    elif saga.data.get("stockMayBeHeld") and not saga.data.get("stockReleased"):
        _enter(saga, order, SagaStep.RELEASE_STOCK)
    else:
        _finish_compensation(saga)


def _finish_compensation(saga: CheckoutSaga) -> None:
    order_services.order_cancel(order_id=saga.order_id, reason=saga.cancel_reason)
    _ended(saga, f"compensated:{saga.cancel_reason.lower()}")
    saga.status = SagaStatus.COMPENSATED
    saga.current_step = SagaStep.DONE
    saga.deadline = None
    _log(saga, "COMPENSATED", saga.cancel_reason, step=SagaStep.DONE)
    _save(saga)


def _order(saga: CheckoutSaga) -> Order:
    return select_object(Order, using=ALIAS, pk=saga.order_id)


def _customer_cancelled(order: Order) -> bool:
    return order.status == OrderStatus.CANCELLED


# --- entry points (one per message the saga reacts to) -----------------------------------------


@_step_log_written_once
def saga_begin(*, order: Order, lines) -> CheckoutSaga:
    """Start the checkout inside the transaction that places the order (``order_place``).

    The saga row, its first deadline and its first command commit with the order, or not at
    all: there is no separate delivery of ``order.created`` to lose (a worker killed while
    holding it, or a broker restart, once left an order PENDING with no saga that recovery
    could see). From the order's commit on, ``sagas_recover`` covers every step.
    """
    saga = CheckoutSaga(
        order_id=order.id,
        data={"stockMayBeHeld": True, "stepStartedAt": time.time()},
        current_step=SagaStep.RESERVE_STOCK,
        step_attempts=1,
        deadline=timezone.now() + _step_timeout(),
    )
    insert_objects([saga], using=ALIAS)
    with tracing.span(f"saga.step {SagaStep.RESERVE_STOCK}", order_id=str(order.id)):
        _send_step_command(saga, order, lines)
    return saga


@_step_log_written_once
def on_stock_reserved(*, order_id) -> None:
    saga = locks.saga_lock(order_id)
    if saga is None:
        return
    if saga.status != SagaStatus.STARTED or saga.current_step != SagaStep.RESERVE_STOCK:
        if saga.status not in (SagaStatus.STARTED, SagaStatus.COMPLETED):
            # A reservation that landed after we gave up on it must not stay held. After
            # completion it is a duplicate reply (re-sent command) of the stock the order keeps.
            publish(commands.STOCK_RELEASE_REQUESTED, {"orderId": str(order_id)}, aggregate_id=order_id, using=ALIAS)
            _log(saga, "LATE_STOCK_RELEASED", step=SagaStep.RESERVE_STOCK)
        return
    _log(saga, "SUCCEEDED")
    order = _order(saga)
    if _customer_cancelled(order):
        _compensate(saga, order, Reason.CUSTOMER_REQUEST)
        return
    _enter(saga, order, SagaStep.AUTHORIZE_PAYMENT)


@_step_log_written_once
def on_stock_reservation_failed(*, order_id, shortages: list) -> None:
    saga = _awaiting(order_id, SagaStatus.STARTED, SagaStep.RESERVE_STOCK)
    if saga is None:
        return
    _log(saga, "FAILED", f"shortages: {shortages}")
    saga.data["stockMayBeHeld"] = False  # all-or-nothing: a failed reservation holds nothing
    saga.data["shortages"] = shortages
    order = _order(saga)
    _compensate(saga, order, Reason.CUSTOMER_REQUEST if _customer_cancelled(order) else Reason.OUT_OF_STOCK)


def _payment_arrived(order_id, step: str, flag: str) -> CheckoutSaga | None:
    """The locked saga if this money movement is the reply it waits for. A reply for a saga
    that has already moved on to compensation (or ended compensated) is undone; a duplicate is
    ignored, also after completion: a re-sent command's second reply is the same payment,
    which the completed order keeps."""
    saga = locks.saga_lock(order_id)
    if saga is None:
        return None
    saga.data[flag] = True
    if saga.status == SagaStatus.STARTED and saga.current_step == step:
        return saga
    if saga.status not in (SagaStatus.STARTED, SagaStatus.COMPLETED):
        _void_late_payment(saga)
    else:
        _save(saga)
    return None


@_step_log_written_once
def on_payment_authorized(*, order_id, amount: str | None = None) -> None:
    """``amount``: what the provider authorized. An order is confirmed only for its own total: a
    payment for any other amount is voided and the checkout unwound."""
    saga = _payment_arrived(order_id, SagaStep.AUTHORIZE_PAYMENT, "paymentAuthorized")
    if saga is None:
        return
    _log(saga, "SUCCEEDED")
    order = locks.order_lock(order_id)  # locked now (after the saga): confirming it needs the lock
    if _customer_cancelled(order):  # the authorization is voided as the checkout unwinds
        _compensate(saga, order, Reason.CUSTOMER_REQUEST)
        return
    if amount is not None and Decimal(amount) != order.total:
        _log(saga, "AMOUNT_MISMATCH", f"authorized {amount}, order total {order.total}")
        _compensate(saga, order, Reason.PAYMENT_FAILED)
        return
    order_services.order_confirm(order_id=order_id, locked=order)  # also erases the card token
    _enter(saga, order, SagaStep.CAPTURE_PAYMENT)


@_step_log_written_once
def on_payment_authorization_failed(*, order_id, declined: bool, may_be_authorized: bool, detail: str = "") -> None:
    """``may_be_authorized``: a call got no answer from the provider, so it may have authorized all
    the same. The reversal then asks it again with the checkout's key, and needs the card
    token for that: the token stays until the checkout ends (``order_cancel`` erases it)."""
    saga = _awaiting(order_id, SagaStatus.STARTED, SagaStep.AUTHORIZE_PAYMENT)
    if saga is None:
        return
    _log(saga, "DECLINED" if declined else "FAILED", detail)
    saga.data["paymentAttempted"] = may_be_authorized  # else nothing was authorized: nothing to void
    if not may_be_authorized:
        order_services.order_payment_token_clear(order_id=order_id)
    order = _order(saga)
    if _customer_cancelled(order):
        reason = Reason.CUSTOMER_REQUEST
    else:
        reason = Reason.PAYMENT_DECLINED if declined else Reason.PAYMENT_FAILED
    _compensate(saga, order, reason)


@_step_log_written_once
def on_payment_captured(*, order_id) -> None:
    saga = _payment_arrived(order_id, SagaStep.CAPTURE_PAYMENT, "paymentCaptured")
    if saga is None:
        return
    _log(saga, "SUCCEEDED")
    order = _order(saga)
    if _customer_cancelled(order):
        _compensate(saga, order, Reason.CUSTOMER_REQUEST)
        return
    _complete(saga)


@_step_log_written_once
def on_payment_capture_failed(*, order_id, detail: str = "") -> None:
    saga = _awaiting(order_id, SagaStatus.STARTED, SagaStep.CAPTURE_PAYMENT)
    if saga is None:
        return
    _log(saga, "FAILED", detail)
    _compensate(saga, _order(saga), Reason.PAYMENT_FAILED)


def _undo_step_done(order_id, step: str, flag: str) -> None:
    """An undo step succeeded: go on unwinding. Also when the saga had given up waiting for it
    (FAILED after its attempts timed out): the undo landed late, so the compensation can finish
    instead of leaving the money or the stock moved back under an order that says otherwise."""
    saga = locks.saga_lock(order_id)
    if saga is None or saga.current_step != step or saga.status not in (SagaStatus.COMPENSATING, SagaStatus.FAILED):
        return
    _log(saga, "SUCCEEDED" if saga.status == SagaStatus.COMPENSATING else "LATE_SUCCEEDED")
    saga.data[flag] = True
    _compensate(saga, _order(saga), saga.cancel_reason)


@_step_log_written_once
def on_payment_reversed(*, order_id) -> None:
    _undo_step_done(order_id, SagaStep.REVERSE_PAYMENT, "paymentReversed")


@_step_log_written_once
def on_stock_released(*, order_id) -> None:
    _undo_step_done(order_id, SagaStep.RELEASE_STOCK, "stockReleased")


@_step_log_written_once
def on_stock_commit_failed(*, order_id) -> None:
    """The order was confirmed but its units could not be taken off the shelf (the reservation
    expired during a slow checkout and the stock was sold meanwhile): give the money back."""
    saga = locks.saga_lock(order_id)
    if saga is None or saga.status not in (SagaStatus.STARTED, SagaStatus.COMPLETED):
        return
    order = _order(saga)
    if order.status != OrderStatus.CONFIRMED:
        _log(saga, "COMMIT_FAILED", f"order is {order.status}; staff action needed", step=SagaStep.DONE)
        _save(saga)
        return
    _log(saga, "COMMIT_FAILED", "reservation expired and the units were sold", step=SagaStep.DONE)
    saga.data["stockReleased"] = True  # nothing was committed: nothing to put back
    _compensate(saga, order, Reason.OUT_OF_STOCK)


@_step_log_written_once
def on_order_cancel_requested(*, order_id) -> None:
    """The customer cancelled. A finished checkout is unwound now; a running one at its next reply,
    or at its step's deadline (``_retry_or_give_up``)."""
    saga = locks.saga_lock(order_id)
    if saga is None:  # no checkout to unwind: the token it would have erased goes now
        order_services.order_payment_token_clear(order_id=order_id)
        return
    if saga.status == SagaStatus.COMPLETED:
        _compensate(saga, _order(saga), Reason.CUSTOMER_REQUEST)
    elif saga.is_active:
        saga.data["cancelRequested"] = True
        _log(saga, "CANCEL_REQUESTED")
        _save(saga)


def _void_late_payment(saga: CheckoutSaga) -> None:
    """A payment reply after the saga moved on (timeout, compensation): undo that payment too."""
    oid = str(saga.order_id)
    publish(
        commands.PAYMENT_REVERSAL_REQUESTED,
        {"orderId": oid, "reason": saga.cancel_reason or "LATE_PAYMENT"},
        aggregate_id=oid,
        using=ALIAS,
    )
    _log(saga, "LATE_PAYMENT_UNDONE")
    _save(saga)


# --- recovery ----------------------------------------------------------------------------------


@_step_log_written_once
def _retry_or_give_up(saga: CheckoutSaga) -> str:
    """One overdue saga, claimed and locked (``locks.overdue_saga_claim``, whose query re-checks
    the deadline on the row it locks: a saga a reply moved on is not claimed): re-send its step
    (bounded, with growing deadlines), then compensate. A compensation that keeps timing out
    ends FAILED for staff to see, and is still re-asked (``_undo_retry_interval``) until its
    undo lands. Returns what was done."""
    order_id = saga.order_id
    order = _order(saga)
    if saga.status == SagaStatus.FAILED:
        # Staff were alerted when it failed, but the undo is still owed: money or stock moved for
        # an order that will not keep them. Re-asked at the longest interval until it lands;
        # ``_undo_step_done`` then finishes the compensation.
        saga.deadline = timezone.now() + _undo_retry_interval()
        _log(saga, "UNDO_RE_ASKED")
        _send_step_command(saga, order)
        _save(saga)
        return "re-asked"
    if saga.status == SagaStatus.STARTED and _customer_cancelled(order):
        # The customer cancelled: unwind now rather than ask again for a step nobody wants. The
        # reversal asks the provider with the checkout's key about an authorization still out.
        if saga.current_step == SagaStep.AUTHORIZE_PAYMENT:
            saga.data["paymentAttempted"] = True
        _log(saga, "TIMED_OUT")
        _compensate(saga, order, Reason.CUSTOMER_REQUEST)
        return "compensating"
    if saga.step_attempts < settings.SAGA_MAX_STEP_ATTEMPTS:
        saga.step_attempts += 1
        saga.deadline = timezone.now() + _step_timeout() * saga.step_attempts
        _log(saga, "TIMED_OUT_RETRYING")
        _send_step_command(saga, order)
        _save(saga)
        return "retried"
    _log(saga, "TIMED_OUT")
    if saga.status == SagaStatus.STARTED:
        if saga.current_step == SagaStep.AUTHORIZE_PAYMENT:
            saga.data["paymentAttempted"] = True  # the authorization may still land: void it
        reason = Reason.CHECKOUT_TIMEOUT if saga.current_step == SagaStep.RESERVE_STOCK else Reason.PAYMENT_FAILED
        _compensate(saga, order, Reason.CUSTOMER_REQUEST if _customer_cancelled(order) else reason)
        return "compensating"
    _ended(saga, "failed")
    saga.status = SagaStatus.FAILED
    saga.deadline = timezone.now() + _undo_retry_interval()
    _log(saga, "FAILED", "compensation did not complete in its attempts; re-asked until it does; staff alerted")
    _save(saga)
    logger.error("saga_failed", order_id=str(order_id), step=saga.current_step)
    return "failed"


def _undo_retry_interval() -> timedelta:
    """How often a FAILED saga's undo is re-asked: the longest interval a step ever waits."""
    return _step_timeout() * settings.SAGA_MAX_STEP_ATTEMPTS


def sagas_recover(*, limit: int = 500) -> dict[str, int]:
    """Beat task and sweeper body: every active (or FAILED, still owing its undo) saga past its
    deadline gets one retry-or-compensate, most overdue first, each in its own transaction.

    Each saga is claimed with ``SKIP LOCKED`` when its turn comes (``locks.overdue_saga_claim``),
    not read from a list made at the start. Sweepers in every worker process and beat's task
    run at once: with a shared list they walked it in the same order, each waiting on the
    locks the one ahead held, so under a backlog of hundreds the last saga waited for several
    full walks. Claiming splits the overdue sagas between the sweepers, and a saga that fell
    due during the walk is taken in the same walk. Each saga is handled at most once per sweep,
    as before. A saga whose handling fails is logged and left for the next sweep; the others go
    on. A failed claim ends the sweep."""
    outcome: dict[str, int] = {}
    seen: list = []
    for _ in range(limit):
        claimed = None
        try:
            with transaction.atomic(using=ALIAS):
                saga = locks.overdue_saga_claim(skip=seen)
                if saga is None:
                    break
                claimed = saga.order_id
                seen.append(claimed)
                result = _retry_or_give_up(saga)
        except Exception:
            if claimed is None:  # the claim itself failed: the database is in trouble, the sweep ends
                raise
            logger.exception("saga_recovery_failed", order_id=str(claimed))
            result = "error"
        outcome[result] = outcome.get(result, 0) + 1
    return outcome


def saga_admin_retry_step(*, order_id) -> str:
    """Staff: re-send the current step's command now (also revives a FAILED saga's compensation)."""
    with transaction.atomic(using=ALIAS):
        saga = locks.saga_lock(order_id)
        if saga is None or saga.status in (SagaStatus.COMPLETED, SagaStatus.COMPENSATED):
            return "nothing to retry"
        if saga.status == SagaStatus.FAILED:
            saga.status = SagaStatus.COMPENSATING
        saga.step_attempts = 1
        saga.deadline = timezone.now() + _step_timeout()
        _send_step_command(saga, _order(saga))
        _save(saga)
        return f"re-sent {saga.current_step}"


def saga_admin_compensate(*, order_id) -> str:
    """Staff: stop a running checkout and unwind it now."""
    with transaction.atomic(using=ALIAS):
        saga = locks.saga_lock(order_id)
        if saga is None or not saga.is_active:
            return "not running"
        if saga.current_step == SagaStep.AUTHORIZE_PAYMENT:
            saga.data["paymentAttempted"] = True
        _compensate(saga, _order(saga), saga.cancel_reason or Reason.CUSTOMER_REQUEST)
        return "compensating"
