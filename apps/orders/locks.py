"""The orders context's row locks, in one place, and the order they are taken in.

    1. the checkout saga's row  (``saga_lock``, or ``overdue_saga_claim`` for recovery)
    2. the order's row          (``order_lock``)

A transaction that needs both takes the saga's first: the orchestrator locks the saga, then
moves the order (``order_confirm``, ``order_cancel``); ``order_ship`` locks the saga to see
that the payment was captured, then transitions the order. The API's other commands
(cancel request, deliver) lock only the order, and a saga reacts to a cancel request in a
later transaction, so no two transactions ever wait on each other in a cycle. A new use case
that needs both rows takes them through these functions, in this order.

Both are ``SELECT ... FOR UPDATE`` and must run inside ``transaction.atomic(using="orders")``.
"""

import uuid
from collections.abc import Collection

from django.utils import timezone

from apps.orders.models import Order
from apps.orders.saga.models import CheckoutSaga, SagaStatus
from shop.db import select_object

ALIAS = "orders"


def saga_lock(order_id: uuid.UUID | str) -> CheckoutSaga | None:
    """First: the order's checkout saga, locked; None for an order that never had one."""
    return select_object(CheckoutSaga, using=ALIAS, lock=True, order_id=order_id)


def overdue_saga_claim(*, skip: Collection[uuid.UUID] = ()) -> CheckoutSaga | None:
    """First, for recovery: the saga longest past its deadline that nobody else holds, locked
    (``FOR UPDATE SKIP LOCKED``). Sweepers running at once take different sagas instead of
    queueing on the same row; a saga a reply is moving right now is left to that reply. ``skip``
    names sagas this sweep already took and must not take again (one whose handling failed)."""
    overdue = CheckoutSaga.objects.using(ALIAS).filter(
        status__in=[SagaStatus.STARTED, SagaStatus.COMPENSATING, SagaStatus.FAILED], deadline__lt=timezone.now()
    )
    if skip:
        overdue = overdue.exclude(order_id__in=skip)
    return overdue.order_by("deadline").select_for_update(skip_locked=True).first()


def order_lock(order_id: uuid.UUID | str) -> Order | None:
    """Second: the order, locked; None when there is no such order."""
    return select_object(Order, using=ALIAS, lock=True, pk=order_id)
