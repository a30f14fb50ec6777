"""The order event store: every order event appended with its change, replay equals the row, time travel.

Orders are driven through the real flows (API, then ``drain()`` runs the checkout saga on
PostgreSQL), so the store is checked against what the services really write.
"""

import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.orders import eventstore, services
from apps.orders.models import AppendOnly, Order, OrderEventRecord, OrderStatus, OutboxMessage
from shop.events.envelope import Envelope
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import UserFactory
from tests.factories.orders import OrderFactory, stocked_products
from tests.factories.orders import order_placed as place
from tests.support.events import drain
from tests.support.worker import wait_until

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


@pytest.fixture
def products():
    return stocked_products(2, price=Decimal("12.50"), on_hand=5)


def staff_post(staff_client, order_id, command, body=None):
    response = staff_client.post(f"/api/v1/orders/{order_id}/{command}", body or {}, format="json")
    assert response.status_code == 200, response.json()


def row_state(order_id) -> dict:
    order = Order.objects.prefetch_related("items").get(pk=order_id)
    return {
        "id": order.id,
        "status": order.status,
        "currency": order.currency,
        "total": order.total,
        "items": sorted((i.product_id, i.quantity, i.unit_price) for i in order.items.all()),
        "cancellation_reason": order.cancellation_reason,
        "tracking_number": order.tracking_number,
    }


def replayed_state(order_id, until=None) -> dict:
    snapshot = eventstore.order_replay(order_id=order_id, until=until)
    return {
        "id": snapshot.id,
        "status": snapshot.status,
        "currency": snapshot.currency,
        "total": snapshot.total,
        "items": sorted((i.product_id, i.quantity, i.unit_price) for i in snapshot.items),
        "cancellation_reason": snapshot.cancellation_reason,
        "tracking_number": snapshot.tracking_number,
    }


def stream(order_id) -> list[tuple[int, str]]:
    return list(eventstore.order_events(order_id=order_id).values_list("sequence", "event_type"))


def _delivered(customer_api, staff_client, products):
    order_id = place(customer_api, products)
    drain()
    staff_post(staff_client, order_id, "ship", {"trackingNumber": "1Z999AA10123456784"})
    staff_post(staff_client, order_id, "deliver")
    return order_id


def _declined(customer_api, staff_client, products):
    order_id = place(customer_api, products, token="tok_chargeDeclined")
    drain()
    return order_id


def _cancelled_by_customer(customer_api, staff_client, products):
    order_id = place(customer_api, products)
    drain()
    assert customer_api.post(f"/api/v1/orders/{order_id}/cancel", format="json").status_code == 200
    drain()
    return order_id


@pytest.mark.parametrize(
    ("flow", "status", "types"),
    [
        (
            _delivered,
            OrderStatus.DELIVERED,
            ["order.created", "order.status_changed", "order.confirmed", "order.status_changed", "order.shipped"]
            + ["order.status_changed", "order.delivered"],
        ),
        (_declined, OrderStatus.CANCELLED, ["order.created", "order.status_changed", "order.cancelled"]),
        (
            _cancelled_by_customer,
            OrderStatus.CANCELLED,
            ["order.created", "order.status_changed", "order.confirmed", "order.status_changed", "order.cancelled"]
            + ["order.cancel_requested"],
        ),
    ],
    ids=["delivered", "payment-declined", "customer-cancel"],
)
def test_replay_of_a_real_flow_equals_the_order_row(
    customer_api, staff_client, products, settings, flow, status, types
):
    settings.PAYMENT_RETRY_BASE_SECONDS = 0.001
    settings.PAYMENT_RETRY_MAX_SECONDS = 0.002
    order_id = flow(customer_api, staff_client, products)

    assert Order.objects.get(pk=order_id).status == status
    assert replayed_state(order_id) == row_state(order_id)
    # Gapless from 1, in the order the services wrote them.
    assert stream(order_id) == list(enumerate(types, start=1))
    # Every order event queued for delivery (outbox) is in the store, with the same id.
    queued = set(OutboxMessage.objects.filter(aggregate_id=str(order_id)).values_list("id", "event_type"))
    stored = set(eventstore.order_events(order_id=order_id).values_list("event_id", "event_type"))
    assert {(event_id, t) for event_id, t in queued if t.startswith("order.")} <= stored


def change_to(order_id, status) -> OrderEventRecord:
    """The event that starts the change to ``status``."""
    return OrderEventRecord.objects.get(aggregate_id=order_id, event_type="order.status_changed", data__to=status)


def test_time_travel_before_the_confirmation_sees_a_pending_order(customer_api, staff_client, products):
    order_id = _delivered(customer_api, staff_client, products)
    created = OrderEventRecord.objects.get(aggregate_id=order_id, event_type="order.created")
    confirming = change_to(order_id, OrderStatus.CONFIRMED)
    shipping = change_to(order_id, OrderStatus.SHIPPED)

    before = eventstore.order_replay(order_id=order_id, until=confirming.occurred_at - timedelta(microseconds=1))
    assert (before.status, before.version, before.as_of) == (OrderStatus.PENDING, created.sequence, created.occurred_at)
    assert before.tracking_number == "" and before.total == Decimal("55.00")  # 4 x 12.50 + 5.00 shipping

    # At the very moment a change starts, the whole change is in (the tracking number comes
    # with order.shipped, a few microseconds later in the same commit).
    at_shipping = eventstore.order_replay(order_id=order_id, until=shipping.occurred_at)
    assert (at_shipping.status, at_shipping.tracking_number) == (OrderStatus.SHIPPED, "1Z999AA10123456784")
    assert (at_shipping.version, at_shipping.as_of) == (shipping.sequence + 1, shipping.occurred_at)
    assert eventstore.order_replay(order_id=order_id).status == OrderStatus.DELIVERED

    with pytest.raises(eventstore.NothingToReplay):
        eventstore.order_replay(order_id=order_id, until=created.occurred_at - timedelta(seconds=1))


def test_time_travel_never_splits_a_change(customer_api, staff_client, products):
    order_id = _cancelled_by_customer(customer_api, staff_client, products)
    cancelling = change_to(order_id, OrderStatus.CANCELLED)

    at = eventstore.order_replay(order_id=order_id, until=cancelling.occurred_at)
    assert (at.status, at.cancellation_reason, at.version) == (OrderStatus.CANCELLED, "CUSTOMER_REQUEST", 6)
    assert replayed_state(order_id, until=cancelling.occurred_at) == row_state(order_id)


def test_a_rolled_back_order_change_leaves_no_event(customer_api, products):
    order_id = place(customer_api, products)
    assert stream(order_id) == [(1, "order.created")]

    with pytest.raises(RuntimeError, match="after the change"), transaction.atomic(using="orders"):
        services.order_confirm(order_id=order_id)
        assert len(stream(order_id)) == 3  # visible inside the transaction ...
        raise RuntimeError("something failed after the change")

    assert stream(order_id) == [(1, "order.created")]  # ... and gone with it
    assert Order.objects.get(pk=order_id).status == OrderStatus.PENDING


def test_a_refused_command_appends_nothing():
    order = OrderFactory(status=OrderStatus.PENDING)
    with pytest.raises(services.InvalidTransition):
        services.order_ship(order_id=order.id, tracking_number="T1")
    assert stream(order.id) == []


def _envelope(order_id, event_type="order.delivered") -> Envelope:
    return Envelope(type=event_type, version=1, aggregate_id=str(order_id), data={"orderId": str(order_id)})


def test_an_append_with_a_stale_sequence_is_refused(customer_api, products):
    order_id = place(customer_api, products)  # sequence 1 exists

    with pytest.raises(eventstore.StaleSequence) as refused, transaction.atomic(using="orders"):
        eventstore.append(_envelope(order_id), expected_sequence=0)
    assert refused.value.sequence == 1
    assert stream(order_id) == [(1, "order.created")]


@pytest.mark.django_db(databases=CONTEXT_DBS, transaction=True)
def test_a_concurrent_writer_makes_the_service_refuse_clearly(settings):
    """A writer that appended (not yet committed) the next number first: the service's insert
    waits on the unique key, then fails once that writer commits; the order change rolls back."""
    settings.EVENTS_FAST_PATH = False
    order = OrderFactory(status=OrderStatus.CONFIRMED)
    appended, commit = threading.Event(), threading.Event()
    outcome: dict = {}

    def other_writer():
        try:
            with transaction.atomic(using="orders"):
                eventstore.append(_envelope(order.id, "order.cancel_requested"), expected_sequence=0)
                appended.set()
                commit.wait(timeout=30)
        finally:
            connections.close_all()

    def ship():
        try:
            services.order_ship(order_id=order.id, tracking_number="T1")
        except Exception as exc:  # noqa: BLE001 - the test inspects what was raised
            outcome["error"] = exc
        finally:
            connections.close_all()

    writer = threading.Thread(target=other_writer)
    writer.start()
    assert appended.wait(timeout=30)
    shipper = threading.Thread(target=ship)
    shipper.start()

    def shipper_waits_on_the_key():
        with connections["orders"].cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return cursor.fetchone()[0] > 0

    wait_until(shipper_waits_on_the_key, timeout=30, message="the service to wait on the sequence key")
    commit.set()
    writer.join(timeout=30)
    shipper.join(timeout=30)

    assert isinstance(outcome.get("error"), services.ConcurrentChange), outcome
    order.refresh_from_db()
    assert (order.status, order.tracking_number) == (OrderStatus.CONFIRMED, "")
    assert stream(order.id) == [(1, "order.cancel_requested")]  # only the other writer's event
    assert not OutboxMessage.objects.filter(aggregate_id=str(order.id)).exists()


def test_old_event_versions_are_upcast_before_folding():
    order_id, product_id = uuid.uuid4(), uuid.uuid4()
    OrderEventRecord.objects.create(
        aggregate_id=order_id,
        sequence=1,
        event_id=uuid.uuid4(),
        event_type="order.created",
        version=1,  # the spec's original shape: no customer, prices or currency
        data={"orderId": str(order_id), "items": [{"productId": str(product_id), "quantity": 3}]},
        occurred_at=timezone.now(),
    )
    snapshot = eventstore.order_replay(order_id=order_id)
    assert (snapshot.status, snapshot.currency, snapshot.total) == (OrderStatus.PENDING, None, None)
    assert [(i.product_id, i.quantity, i.unit_price) for i in snapshot.items] == [(product_id, 3, None)]


def test_stored_events_cannot_be_changed_or_deleted(customer_api, products):
    order_id = place(customer_api, products)
    record = OrderEventRecord.objects.get(aggregate_id=order_id)

    record.event_type = "order.delivered"
    with pytest.raises(AppendOnly):
        record.save()
    with pytest.raises(AppendOnly):
        record.delete()
    with pytest.raises(AppendOnly):
        OrderEventRecord.objects.filter(aggregate_id=order_id).update(event_type="x")
    with pytest.raises(AppendOnly):
        OrderEventRecord.objects.filter(aggregate_id=order_id).delete()

    staff = Client()
    staff.force_login(UserFactory(superuser=True))
    listed = staff.get("/admin/orders/ordereventrecord/", {"q": str(order_id)})
    assert listed.status_code == 200 and str(order_id) in listed.content.decode()
    page = staff.get(f"/admin/orders/ordereventrecord/{record.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()  # view only
    assert staff.post(f"/admin/orders/ordereventrecord/{record.pk}/change/", {"event_type": "x"}).status_code == 403
    assert staff.post(f"/admin/orders/ordereventrecord/{record.pk}/delete/", {"post": "yes"}).status_code == 403
    assert OrderEventRecord.objects.get(pk=record.pk).event_type == "order.created"


# --- HTTP ----------------------------------------------------------------------------------------


def test_staff_lists_the_stored_events_paginated(customer_api, staff_client, products):
    order_id = _cancelled_by_customer(customer_api, staff_client, products)

    body = staff_client.get(f"/api/v1/orders/{order_id}/events?limit=4").json()
    assert body["success"] is True
    assert body["pagination"] == {"page": 1, "limit": 4, "total": 6, "totalExact": True, "pages": 2,
                                  "hasNext": True, "hasPrev": False, "nextCursor": None}  # fmt: skip
    first = body["data"][0]
    assert (first["sequence"], first["type"], first["version"]) == (1, "order.created", 2)
    assert first["data"]["orderId"] == str(order_id) and first["data"]["total"] == "55.00"
    assert "tok_visa" not in str(body)
    second_page = staff_client.get(f"/api/v2/orders/{order_id}/events?limit=4&page=2").json()["data"]
    assert [e["sequence"] for e in second_page] == [5, 6]
    assert second_page[1]["type"] == "order.cancel_requested"


def test_staff_replays_an_order_at_a_moment(customer_api, staff_client, products):
    order_id = _delivered(customer_api, staff_client, products)
    confirming = change_to(order_id, OrderStatus.CONFIRMED)

    now = staff_client.get(f"/api/v1/orders/{order_id}/replay").json()["data"]
    assert (now["status"], now["trackingNumber"], now["version"], now["total"]) == (
        "DELIVERED",
        "1Z999AA10123456784",
        7,
        "55.00",
    )
    assert {i["productId"] for i in now["items"]} == {str(p.id) for p in products}
    assert now["items"][0]["unitPrice"] == "12.50" and now["items"][0]["quantity"] == 2

    moment = (confirming.occurred_at - timedelta(microseconds=1)).isoformat()
    before = staff_client.get(f"/api/v1/orders/{order_id}/replay", {"at": moment}).json()["data"]
    assert (before["status"], before["version"]) == ("PENDING", 1)

    early = staff_client.get(f"/api/v1/orders/{order_id}/replay", {"at": "2000-01-01T00:00:00Z"})
    assert early.status_code == 404 and early.json()["error"]["code"] == "NO_EVENTS_AT"


@pytest.mark.parametrize("path", ["events", "replay"])
def test_event_endpoints_are_staff_only_and_refuse_bad_input(customer_api, staff_client, products, path):
    order_id = place(customer_api, products)

    forbidden = customer_api.get(f"/api/v1/orders/{order_id}/{path}")  # the order's own customer
    assert forbidden.status_code == 403 and forbidden.json()["success"] is False
    assert APIClient().get(f"/api/v1/orders/{order_id}/{path}").status_code == 401

    unknown = staff_client.get(f"/api/v1/orders/{uuid.uuid4()}/{path}")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "ORDER_NOT_FOUND"
    extra = staff_client.get(f"/api/v1/orders/{order_id}/{path}", {"sortBy": "type"})
    assert extra.status_code == 400 and extra.json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("at", ["yesterday", "2024-13-01T00:00:00Z", "1700000000", "2024-05-01T10:00:00 00:00"])
def test_replay_refuses_a_bad_moment(customer_api, staff_client, products, at):
    order_id = place(customer_api, products)
    response = staff_client.get(f"/api/v1/orders/{order_id}/replay", {"at": at})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
