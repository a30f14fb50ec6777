"""One input mechanism everywhere (shop/api/inputs.py): unknown body or query fields are a 400
naming them, in every context, and orders' free text is cleaned like the catalog's."""

import uuid
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from apps.orders.models import Order
from tests.conftest import CONTEXT_DBS
from tests.factories.catalog import ProductFactory
from tests.factories.orders import order_payload, stocked_products

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


def _refused(response, field: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert field in str(body["error"]["details"]), body


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ("top", "status"),  # mass assignment: a client cannot set its order CONFIRMED
        ("shippingAddress", "isResidential"),
        ("payment", "amount"),
        ("item", "unitPrice"),  # nor its own price
    ],
)
def test_order_body_with_an_unknown_field_at_any_level_is_refused(customer_api, where, field):
    payload = order_payload(stocked_products(1, price=Decimal("5.00")))
    target = {"top": payload, "item": payload["items"][0]}.get(where) or payload[where]
    target[field] = "1"
    _refused(customer_api.post("/api/v1/orders", payload, format="json"), field)
    assert not Order.objects.exists()


def test_order_notes_and_address_are_stripped_of_markup_like_catalog_text(customer_api):
    payload = order_payload(
        stocked_products(1, price=Decimal("5.00")),
        notes="<script>alert(1)</script>Ring <b>twice</b>\x00",
    )
    payload["shippingAddress"]["street"] = "1 <img src=x onerror=alert(1)>Main St"
    response = customer_api.post("/api/v1/orders", payload, format="json")
    assert response.status_code == 201, response.content
    order = Order.objects.get()
    assert order.notes == "Ring twice"
    assert order.shipping_street == "1 Main St"


def test_order_text_must_be_a_json_string(customer_api):
    payload = order_payload(stocked_products(1, price=Decimal("5.00")), notes=12345)
    _refused(customer_api.post("/api/v1/orders", payload, format="json"), "notes")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/inventory/{product}/adjustments", {"delta": 1, "reason": "count", "onHand": 5}),
        ("post", "/api/v1/payments/{uuid}/refund", {"amount": "1.00", "status": "REFUNDED"}),
        ("post", "/api/v1/products", {"sku": "S-1", "name": "N", "price": "1.00", "rating": 5}),
    ],
)
def test_staff_bodies_with_unknown_fields_are_refused(staff_client, method, path, body):
    product = ProductFactory()
    url = path.format(product=product.id, uuid=uuid.uuid4())
    response = getattr(staff_client, method)(url, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    _refused(response, next(iter(set(body) - {"delta", "reason", "amount", "sku", "name", "price"})))


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/products/{product}",
        "/api/v1/categories",
        "/api/v1/inventory/{product}",
        "/api/v1/bff/products/{product}/complete",
        "/api/v1/auth/me",
        "/api/v1/orders",
        "/api/v1/orders/{uuid}",
    ],
)
def test_unknown_query_parameters_are_refused_on_every_read(customer_api, path):
    product = ProductFactory()
    url = path.format(product=product.id, uuid=uuid.uuid4())
    _refused(customer_api.get(url, {"expand": "everything"}), "expand")


def test_anonymous_reads_refuse_unknown_query_parameters_too():
    product = ProductFactory()
    _refused(APIClient().get(f"/api/v1/products/{product.id}/reviews", {"sort": "rating"}), "sort")


def test_each_read_validates_its_own_body_while_the_serializer_is_built_once_per_class_and_thread(customer_api):
    """``StrictInput.read`` keeps one built serializer per class and thread: a refused body leaves
    no errors for the next request, and a good one no values."""
    from apps.orders.serializers import OrderCreateInput
    from shop.api import inputs

    products = stocked_products(2, price=Decimal("5.00"))
    good = order_payload(products, quantity=2)
    bad = order_payload(products, quantity=2) | {"shippingMethod": "teleport"}
    bad["items"][0]["quantity"] = 0

    _refused(customer_api.post("/api/v1/orders", bad, format="json"), "shippingMethod")
    built = inputs._BUILT.inputs[OrderCreateInput]
    assert customer_api.post("/api/v1/orders", good, format="json").status_code == 201
    refused_again = customer_api.post("/api/v1/orders", {**good, "notes": 5}, format="json")

    assert inputs._BUILT.inputs[OrderCreateInput] is built  # built once, used by all three requests
    details = str(refused_again.json()["error"]["details"])
    assert "notes" in details and "shippingMethod" not in details and "quantity" not in details
    assert Order.objects.get().items.count() == 2
    assert not hasattr(built, "initial_data") and not hasattr(built, "_validated_data")
