"""Helpers for end-to-end checkout tests: a customer over HTTP, polling, and the invariants."""

import uuid
from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.db.models import Sum
from rest_framework.test import APIClient

from apps.inventory.models import Reservation, StockItem
from apps.orders.models import Order, OrderStatus
from apps.orders.saga.models import CheckoutSaga, SagaStatus
from apps.payments.models import Payment
from shop.events import relay
from shop.events.store import outbox_model
from tests.support.worker import wait_until

PASSWORD = "a-long-and-unusual-passphrase-42"
TERMINAL_ORDER = {OrderStatus.CONFIRMED, OrderStatus.CANCELLED, OrderStatus.SHIPPED, OrderStatus.DELIVERED}
PAID_STATUSES = {OrderStatus.CONFIRMED, OrderStatus.SHIPPED, OrderStatus.DELIVERED}


def customer_client(email: str) -> APIClient:
    """Register and log in exactly as a storefront would."""
    client = APIClient()
    registered = client.post(
        "/api/v1/auth/register", {"email": email, "password": PASSWORD, "name": "E2E Customer"}, format="json"
    )
    assert registered.status_code == 201, registered.json()
    token = client.post("/api/v1/auth/token", {"email": email, "password": PASSWORD}, format="json")
    assert token.status_code == 200, token.json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['data']['access']}")
    return client


def order_body(product_ids, *, token="tok_visa", quantity=1) -> dict:
    return {
        "items": [{"productId": str(pid), "quantity": quantity} for pid in product_ids],
        "shippingAddress": {
            "street": "1 Main St", "city": "Springfield", "state": "IL", "zipCode": "62701", "country": "USA",
        },
        "shippingMethod": "standard",
        "payment": {"method": "card", "token": token},
    }  # fmt: skip


def place(client, product_ids, **kwargs) -> uuid.UUID:
    response = client.post("/api/v1/orders", order_body(product_ids, **kwargs), format="json")
    assert response.status_code == 201, response.json()
    return uuid.UUID(response.json()["data"]["id"])


def poll_status(client, order_id, *, until=TERMINAL_ORDER, timeout=60) -> dict:
    def settled():
        body = client.get(f"/api/v1/orders/{order_id}").json()["data"]
        return body if body["status"] in until and not body["processing"] else None

    return wait_until(settled, timeout=timeout, interval=0.2, message=f"order {order_id} to reach {until}")


def undelivered_events() -> int:
    """Outbox rows that some subscriber has not received yet (neither handled nor dead-lettered)."""
    owed = [
        row
        for alias in settings.CONTEXTS
        for row in outbox_model(alias).objects.filter(delivered_at__isnull=True).only("id", "event_type")
    ]
    missing = relay.missing_consumers(owed)
    return sum(1 for row in owed if missing[row.id])


def wait_quiescent(timeout=180) -> None:
    """Every saga terminal and every event received by all its subscribers (nothing left in flight)."""

    def quiet():
        active = CheckoutSaga.objects.filter(status__in=[SagaStatus.STARTED, SagaStatus.COMPENSATING]).count()
        return active == 0 and undelivered_events() == 0

    wait_until(quiet, timeout=timeout, interval=0.5, message="all sagas to end")


def assert_invariants(initial_stock: dict[uuid.UUID, int]) -> dict:
    """Money and stock agree with the orders, whatever happened on the way."""
    orders = list(Order.objects.all())
    assert orders, "no orders placed"
    assert all(order.status in TERMINAL_ORDER for order in orders)
    sagas = {s.order_id: s for s in CheckoutSaga.objects.all()}
    assert all(sagas[o.id].status in (SagaStatus.COMPLETED, SagaStatus.COMPENSATED) for o in orders)

    paid_total = sum((o.total for o in orders if o.status in PAID_STATUSES), Decimal("0"))
    money = Payment.objects.aggregate(c=Sum("captured_amount"), r=Sum("refunded_amount"))
    net = (money["c"] or Decimal("0")) - (money["r"] or Decimal("0"))
    assert net == paid_total, f"captured − refunded = {net}, paid orders total {paid_total}"

    live_payments = defaultdict(int)
    for payment in Payment.objects.exclude(status="FAILED"):
        live_payments[payment.order_id] += 1
    assert max(live_payments.values(), default=0) <= 1, "an order was charged twice"

    committed = defaultdict(int)
    for reservation in Reservation.objects.filter(status="COMMITTED"):
        committed[reservation.product_id] += reservation.quantity
    for item in StockItem.objects.filter(product_id__in=initial_stock):
        assert item.reserved == 0, f"{item.product_id} still has {item.reserved} reserved"
        assert item.on_hand + committed[item.product_id] == initial_stock[item.product_id]
    by_status = defaultdict(int)
    for order in orders:
        by_status[order.cancellation_reason or order.status] += 1
    return dict(by_status)
