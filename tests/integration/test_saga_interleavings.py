"""Random interleavings of the checkout (seeded, so a failure is reproducible): replies delivered
in any order, some twice; customer cancels; staff ships; timeouts (``sagas_recover``) and
reservation expiry at any point. After everything settles, money, stock and the order agree."""

import random
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.inventory import services as inventory_services
from apps.inventory.models import StockItem
from apps.orders import services as order_services
from apps.orders.models import Order
from apps.orders.saga import orchestrator
from apps.orders.saga.models import CheckoutSaga
from apps.payments.models import Payment
from shop.events import inbox, relay
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import UserFactory
from tests.factories.orders import order_payload, stocked_products
from tests.support.saga import expire_saga_deadlines

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


def _collect(pool: list) -> None:
    for alias in CONTEXT_DBS:
        relay.dispatch(alias, send=lambda sub, wire: pool.append((sub.consumer, wire)))


def _time_out(order_id) -> dict:
    expire_saga_deadlines(order_id)
    return orchestrator.sagas_recover()


def _try(log: list, name: str, fn) -> None:
    try:
        fn()
        log.append((name, "ok"))
    except order_services.InvalidTransition:
        log.append((name, "refused"))


def _settle(order_id, pool: list, log: list) -> None:
    """Deliver everything (in order), then time the saga out until it ends; staff revive FAILED."""
    for _ in range(100):
        _collect(pool)
        while pool:
            inbox.handle(*pool.pop(0))
            _collect(pool)
        saga = CheckoutSaga.objects.get(order_id=order_id)
        if saga.status == "FAILED":
            log.append(("staff retry", orchestrator.saga_admin_retry_step(order_id=order_id)))
        elif not saga.is_active:
            return
        else:
            _time_out(order_id)
    raise AssertionError(f"did not settle: {log}")


@pytest.mark.parametrize("seed", range(40))
def test_any_interleaving_ends_consistent(api_client, settings, seed):
    rng = random.Random(seed)
    settings.SAGA_MAX_STEP_ATTEMPTS = rng.choice([1, 2, 3])
    api_client.force_authenticate(UserFactory())
    products = stocked_products(2, price=Decimal("10.00"), on_hand=5)
    token = rng.choice(["tok_visa"] * 4 + ["tok_chargeDeclined"])
    response = api_client.post(
        "/api/v1/orders", order_payload(products, quantity=2, payment={"method": "card", "token": token}), format="json"
    )
    assert response.status_code == 201
    order_id = uuid.UUID(response.json()["data"]["id"])
    pool: list = []
    log: list = []
    for _ in range(200):
        _collect(pool)
        roll = rng.random()
        if pool and roll < 0.7:
            i = rng.randrange(len(pool))
            consumer, wire = pool[i] if rng.random() < 0.15 else pool.pop(i)  # sometimes delivered again later
            log.append(("deliver", wire["type"]))
            inbox.handle(consumer, wire)
        elif roll < 0.78:
            log.append(("recover", _time_out(order_id)))
        elif roll < 0.81:
            _try(log, "cancel", lambda: order_services.order_cancel_request(order_id=order_id))
        elif roll < 0.83:
            _try(log, "ship", lambda: order_services.order_ship(order_id=order_id, tracking_number="T"))
        elif roll < 0.86:
            log.append(("expire", inventory_services.reservations_expire_due(now=timezone.now() + timedelta(days=1))))
        elif not pool and not CheckoutSaga.objects.get(order_id=order_id).is_active:
            break
    _settle(order_id, pool, log)

    saga = CheckoutSaga.objects.get(order_id=order_id)
    order = Order.objects.get(pk=order_id)
    payments = [p.status for p in Payment.objects.filter(order_id=order_id) if p.status != "FAILED"]
    stock = {(s.on_hand, s.reserved) for s in StockItem.objects.filter(product_id__in=[p.id for p in products])}
    state = (saga.status, order.status, payments, stock, log)
    if order.status in ("CONFIRMED", "SHIPPED"):
        assert (saga.status, payments, stock) == ("COMPLETED", ["CAPTURED"], {(3, 0)}), state
    else:
        assert (saga.status, order.status, stock) == ("COMPENSATED", "CANCELLED", {(5, 0)}), state
        assert set(payments) <= {"VOIDED", "REFUNDED"}, state
