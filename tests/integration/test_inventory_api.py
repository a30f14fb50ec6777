"""Inventory HTTP API and the stock item that follows a new product through an event."""

import uuid

import pytest

from apps.catalog import services as catalog_services
from apps.inventory import facade
from apps.inventory.models import StockItem, StockMovement
from shop.events import inbox
from shop.events.store import outbox_model
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import UserFactory
from tests.factories.inventory import StockItemFactory
from tests.support import events as testing

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


def url(product_id, suffix="") -> str:
    return f"/api/v1/inventory/{product_id}{suffix}"


def test_a_new_product_gets_its_stock_item_through_the_event(staff_client):
    response = staff_client.post("/api/v1/products", {"sku": "EV-1", "name": "Mug", "price": "5.00"}, format="json")
    product_id = uuid.UUID(response.json()["data"]["id"])
    assert not StockItem.objects.filter(product_id=product_id).exists()  # catalog never writes inventory
    testing.drain()
    item = StockItem.objects.get(product_id=product_id)
    assert (item.on_hand, item.reserved) == (0, 0)
    testing.drain()  # nothing left to deliver; a redelivery would be a no-op anyway


def test_a_redelivered_product_created_event_keeps_one_stock_item():
    product = catalog_services.product_create(sku="EV-2", name="Cup", price="4.00")
    wire = outbox_model("catalog").objects.get(aggregate_id=str(product.id)).envelope
    assert inbox.handle("inventory.create_stock_item", wire) is True
    assert inbox.handle("inventory.create_stock_item", wire) is False
    assert StockItem.objects.filter(product_id=product.id).count() == 1


def test_availability_is_public(api_client):
    product = catalog_services.product_create(sku="AV-1", name="Cup", price="4.00")
    item = StockItemFactory(product_id=product.id, on_hand=5)
    facade.stock_reserve(order_id=uuid.uuid4(), items=[facade.StockLine(item.product_id, 2)])
    response = api_client.get(url(item.product_id))
    assert response.status_code == 200
    assert response.json()["data"] == {"productId": str(item.product_id), "available": 3, "inStock": True}
    assert api_client.get(url(uuid.uuid4())).json()["error"]["code"] == "STOCK_NOT_FOUND"


def test_staff_adjustment_is_ledgered(staff_client):
    item = StockItemFactory(on_hand=5)
    body = {"delta": 7, "reason": "Delivery 42"}
    response = staff_client.post(url(item.product_id, "/adjustments"), body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["data"] == {
        "productId": str(item.product_id), "available": 12, "inStock": True, "onHand": 12, "reserved": 0
    }  # fmt: skip
    movement = StockMovement.objects.filter(product_id=item.product_id, reason="ADJUSTMENT").get()
    assert (movement.on_hand_delta, movement.note) == (7, "Delivery 42")


def test_an_adjustment_retried_with_its_idempotency_key_counts_once_and_another_body_is_422(staff_client):
    """A client that timed out and retried booked a delivery twice: 40 units became 80."""
    item = StockItemFactory(on_hand=5)
    body = {"delta": 40, "reason": "Delivery 43"}

    first = staff_client.post(url(item.product_id, "/adjustments"), body, format="json", HTTP_IDEMPOTENCY_KEY="d-43")
    again = staff_client.post(url(item.product_id, "/adjustments"), body, format="json", HTTP_IDEMPOTENCY_KEY="d-43")
    other = {"delta": 41, "reason": "Delivery 43"}
    reused = staff_client.post(url(item.product_id, "/adjustments"), other, format="json", HTTP_IDEMPOTENCY_KEY="d-43")

    assert first.status_code == 201 and again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    item.refresh_from_db()
    assert item.on_hand == 45
    assert StockMovement.objects.filter(product_id=item.product_id, reason="ADJUSTMENT").count() == 1


def test_adjustment_cannot_go_below_reserved(staff_client):
    item = StockItemFactory(on_hand=5)
    facade.stock_reserve(order_id=uuid.uuid4(), items=[facade.StockLine(item.product_id, 4)])
    response = staff_client.post(url(item.product_id, "/adjustments"), {"delta": -2, "reason": "Broken"}, format="json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "STOCK_BELOW_RESERVED"
    assert error["details"] == {"productId": str(item.product_id), "onHand": 5, "reserved": 4, "delta": -2}
    assert StockItem.objects.get(product_id=item.product_id).on_hand == 5
    ok = staff_client.post(url(item.product_id, "/adjustments"), {"delta": -1, "reason": "Broken"}, format="json")
    assert ok.json()["data"]["available"] == 0


@pytest.mark.parametrize("body", [{"delta": 0, "reason": "x"}, {"delta": 1}, {"delta": "many", "reason": "x"}])
def test_adjustment_input_is_validated(staff_client, body):
    item = StockItemFactory()
    assert staff_client.post(url(item.product_id, "/adjustments"), body, format="json").status_code == 400


def test_adjustments_are_staff_only_and_need_a_stock_item(api_client, staff_client):
    item = StockItemFactory()
    body = {"delta": 1, "reason": "x"}
    assert api_client.post(url(item.product_id, "/adjustments"), body, format="json").status_code == 401
    api_client.force_authenticate(UserFactory())
    assert api_client.post(url(item.product_id, "/adjustments"), body, format="json").status_code == 403
    assert staff_client.post(url(uuid.uuid4(), "/adjustments"), body, format="json").status_code == 404
