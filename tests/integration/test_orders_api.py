import uuid
from decimal import Decimal

import pytest

from apps.catalog.models import Product
from apps.orders.models import Order, OrderEventRecord, OrderStatus, OutboxMessage
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import UserFactory
from tests.factories.orders import OrderFactory, order_payload, stocked_products
from tests.support.queries import assert_max_queries

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


@pytest.fixture
def customer():
    return UserFactory(name="Ada Lovelace")


@pytest.fixture
def products():
    return stocked_products(2, price=Decimal("19.99"))


def place(customer_api, products, version="v1", **overrides):
    return customer_api.post(f"/api/{version}/orders", order_payload(products, **overrides), format="json")


def test_create_order_snapshots_prices_and_writes_everything_in_one_go(customer_api, customer, products):
    response = place(customer_api, products, quantity=2)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["success"] is True and body["message"] == "Order created successfully"
    data = body["data"]
    assert data["status"] == "PENDING" and data["processing"] is True
    assert data["subtotal"] == "79.96" and data["shippingCost"] == "5.00" and data["total"] == "84.96"
    assert {i["sku"] for i in data["items"]} == {p.sku for p in products}
    assert data["items"][0]["unitPrice"] == "19.99" and data["items"][0]["lineTotal"] == "39.98"
    assert [(h["fromStatus"], h["toStatus"], h["note"]) for h in data["statusHistory"]] == [
        ("", "PENDING", "Order created")
    ]
    assert "token" not in str(body) and "tok_visa" not in str(body)  # the card token is write-only

    order = Order.objects.get(pk=data["id"])
    assert order.user_id == customer.id and order.payment_token == "tok_visa"
    event = OrderEventRecord.objects.get(aggregate_id=order.id, event_type="order.created")
    assert event.version == 2
    assert event.data["customerId"] == str(customer.id)
    assert event.data["total"] == "84.96"
    assert "tok_visa" not in str(event.data)
    # Queued for delivery: the saga's first command; order.created has no subscriber to queue for.
    assert list(OutboxMessage.objects.values_list("event_type", flat=True)) == ["checkout.stock_reservation_requested"]


def test_price_snapshot_survives_a_later_price_change(customer_api, products):
    order_id = place(customer_api, products).json()["data"]["id"]
    Product.objects.filter(pk=products[0].pk).update(price=Decimal("99.00"), name="Renamed")

    data = customer_api.get(f"/api/v1/orders/{order_id}").json()["data"]
    item = next(i for i in data["items"] if i["productId"] == str(products[0].id))
    assert item["unitPrice"] == "19.99" and item["productName"] == products[0].name


def test_unknown_or_inactive_product_is_400_naming_it(customer_api, products):
    inactive = stocked_products(1, is_active=False)[0]
    unknown = uuid.uuid4()
    payload = order_payload(products)
    payload["items"] += [{"productId": str(inactive.id), "quantity": 1}, {"productId": str(unknown), "quantity": 1}]

    response = customer_api.post("/api/v1/orders", payload, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "PRODUCT_UNAVAILABLE"
    assert set(error["details"]["productIds"]) == {str(inactive.id), str(unknown)}
    assert str(unknown) in error["message"]
    assert not Order.objects.exists()


def test_obvious_stock_shortage_is_409_in_the_spec_shape(customer_api):
    product = stocked_products(1, on_hand=3)[0]

    response = place(customer_api, [product], quantity=5)

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "INSUFFICIENT_STOCK"
    assert {k: error["details"][k] for k in ("productId", "available", "requested")} == {
        "productId": str(product.id),
        "available": 3,
        "requested": 5,
    }
    assert not Order.objects.exists()


def _with(path: str, value):
    """order_payload with one nested field replaced (``None`` removes it)."""

    def build(products):
        payload = order_payload(products)
        *parents, last = path.split(".")
        target = payload
        for name in parents:
            target = target[int(name)] if name.isdigit() else target[name]
        if value is None:
            del target[last]
        else:
            target[last] = value
        return payload

    return build


@pytest.mark.parametrize(
    ("mutation", "field"),
    [
        (_with("items", []), "items"),
        (_with("items.0.quantity", 0), "items"),
        (_with("items.0.quantity", 101), "items"),
        (_with("items.0.quantity", "2"), "items"),
        (_with("items.0.quantity", 1.5), "items"),
        (_with("items.0.productId", "not-a-uuid"), "items"),
        (_with("shippingAddress.street", ""), "shippingAddress"),
        (_with("shippingAddress.street", "x" * 201), "shippingAddress"),
        (_with("shippingAddress.city", "x" * 101), "shippingAddress"),
        (_with("shippingAddress.state", "ILL"), "shippingAddress"),
        (_with("shippingAddress.state", "I"), "shippingAddress"),
        (_with("shippingAddress.zipCode", "1234"), "shippingAddress"),
        (_with("shippingAddress.zipCode", "12345-67"), "shippingAddress"),
        (_with("shippingAddress.zipCode", 62701), "shippingAddress"),
        (_with("shippingAddress.country", "US"), "shippingAddress"),
        (_with("shippingAddress", None), "shippingAddress"),
        (_with("shippingMethod", "teleport"), "shippingMethod"),
        (_with("notes", "x" * 501), "notes"),
        (_with("payment.method", "cash"), "payment"),
        (_with("payment", None), "payment"),
    ],
)
def test_validation_edge_cases_are_400_with_the_field(customer_api, products, mutation, field):
    response = customer_api.post("/api/v1/orders", mutation(products), format="json")

    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in error["details"]


def test_validation_limits_are_inclusive(customer_api):
    many = stocked_products(50, on_hand=200)
    payload = order_payload(many, quantity=100, notes="x" * 500)
    payload["shippingAddress"]["zipCode"] = "62701-1234"

    assert customer_api.post("/api/v1/orders", payload, format="json").status_code == 201


def test_more_than_50_items_and_duplicate_products_are_refused(customer_api):
    many = stocked_products(51)
    assert customer_api.post("/api/v1/orders", order_payload(many), format="json").status_code == 400
    payload = order_payload(many[:1])
    payload["items"] *= 2
    response = customer_api.post("/api/v1/orders", payload, format="json")
    assert response.status_code == 400 and "items" in response.json()["error"]["details"]


def test_anonymous_cannot_order(api_client, products):
    assert place(api_client, products).status_code == 401


def test_another_users_order_is_404_not_403(customer_api, products):
    from rest_framework.test import APIClient

    order_id = place(customer_api, products).json()["data"]["id"]
    intruder = APIClient()
    intruder.force_authenticate(UserFactory())

    for response in (
        intruder.get(f"/api/v1/orders/{order_id}"),
        intruder.get(f"/api/v2/orders/{order_id}"),
        intruder.post(f"/api/v1/orders/{order_id}/cancel"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "ORDER_NOT_FOUND"
    assert Order.objects.get(pk=order_id).status == OrderStatus.PENDING


def test_processing_flag_follows_the_checkout(customer_api, customer):
    pending = OrderFactory(user_id=customer.id)
    confirmed = OrderFactory(user_id=customer.id, status=OrderStatus.CONFIRMED)

    assert customer_api.get(f"/api/v1/orders/{pending.id}").json()["data"]["processing"] is True
    assert customer_api.get(f"/api/v1/orders/{confirmed.id}").json()["data"]["processing"] is False


def test_list_shows_only_own_orders_with_filters_and_sorting(customer_api, customer):
    mine = [OrderFactory(user_id=customer.id, total=Decimal(t)) for t in ("10.00", "30.00", "20.00")]
    OrderFactory(user_id=customer.id, status=OrderStatus.CANCELLED)
    OrderFactory()  # someone else's

    body = customer_api.get("/api/v1/orders?status=PENDING&sortBy=total&order=asc").json()

    assert [o["total"] for o in body["data"]] == ["10.00", "20.00", "30.00"]
    assert body["pagination"] == {"page": 1, "limit": 10, "total": 3, "totalExact": True, "pages": 1,
                                  "hasNext": False, "hasPrev": False, "nextCursor": None}  # fmt: skip
    newest_first = customer_api.get("/api/v1/orders?limit=2").json()
    assert newest_first["pagination"]["total"] == 4 and newest_first["pagination"]["hasNext"] is True
    assert {o["id"] for o in body["data"]} == {str(o.id) for o in mine}


def test_list_date_filters(customer_api, customer):
    from datetime import timedelta

    from django.utils import timezone

    old = OrderFactory(user_id=customer.id)
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    recent = OrderFactory(user_id=customer.id)
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    until = (timezone.now() - timedelta(days=5)).date().isoformat()

    assert [o["id"] for o in customer_api.get(f"/api/v1/orders?createdFrom={since}").json()["data"]] == [str(recent.id)]
    assert [o["id"] for o in customer_api.get(f"/api/v1/orders?createdTo={until}").json()["data"]] == [str(old.id)]


@pytest.mark.parametrize(
    "query", ["status=LOST", "sortBy=password", "order=sideways", "createdFrom=yesterday", "color=red", "userId=1"]
)
def test_list_refuses_unknown_parameters_and_values(customer_api, query):
    response = customer_api.get(f"/api/v1/orders?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(("version", "queries"), [("v1", 3), ("v2", 4)])
def test_list_query_count_does_not_grow_with_orders(customer_api, customer, version, queries):
    # count + page + all items (+ one accounts look-up for every customer on the page in v2)
    OrderFactory.create_batch(2, user_id=customer.id, items=3)
    with assert_max_queries(queries):
        assert len(customer_api.get(f"/api/{version}/orders").json()["data"]) == 2
    OrderFactory.create_batch(8, user_id=customer.id, items=3)
    with assert_max_queries(queries):
        assert len(customer_api.get(f"/api/{version}/orders").json()["data"]) == 10


def test_v2_money_objects_customer_and_item_pricing(customer_api, customer, products):
    data = place(customer_api, products, version="v2", quantity=3).json()["data"]

    assert data["customer"] == {"id": str(customer.id), "name": "Ada Lovelace"}
    assert data["total"] == {"amount": "124.94", "currency": "USD"}
    assert data["shipping"] == {"amount": "5.00", "currency": "USD"}
    item = data["items"][0]
    assert item["unitPrice"] == {"amount": "19.99", "currency": "USD"}
    assert item["lineTotal"] == {"amount": "59.97", "currency": "USD"}
    assert "userId" not in data and "shippingCost" not in data

    listed = customer_api.get("/api/v2/orders").json()["data"][0]
    assert listed["customer"]["name"] == "Ada Lovelace" and listed["subtotal"]["amount"] == "119.94"
    v1 = customer_api.get(f"/api/v1/orders/{data['id']}").json()["data"]
    assert v1["total"] == "124.94" and v1["userId"] == str(customer.id) and "customer" not in v1


@pytest.mark.parametrize("status", [OrderStatus.PENDING, OrderStatus.CONFIRMED])
def test_cancel_allowed_states(customer_api, customer, status):
    order = OrderFactory(user_id=customer.id, status=status)

    response = customer_api.post(f"/api/v1/orders/{order.id}/cancel")

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["status"] == "CANCELLED" and data["cancellationReason"] == "CUSTOMER_REQUEST"
    assert data["statusHistory"][-1]["fromStatus"] == status
    types = set(OrderEventRecord.objects.filter(aggregate_id=order.id).values_list("event_type", flat=True))
    assert {"order.cancel_requested", "order.cancelled", "order.status_changed"} <= types


@pytest.mark.parametrize("status", [OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.CANCELLED])
def test_cancel_other_states_is_409_invalid_state(customer_api, customer, status):
    order = OrderFactory(user_id=customer.id, status=status)

    response = customer_api.post(f"/api/v1/orders/{order.id}/cancel")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "INVALID_STATE"
    assert not OutboxMessage.objects.exists()


def test_staff_ship_and_deliver(customer_api, staff_client, customer):
    order = OrderFactory(user_id=customer.id, status=OrderStatus.CONFIRMED)

    assert (
        customer_api.post(f"/api/v1/orders/{order.id}/ship", {"trackingNumber": "1Z999"}, format="json").status_code
        == 403
    )
    assert staff_client.post(f"/api/v1/orders/{order.id}/ship", {}, format="json").status_code == 400
    shipped = staff_client.post(f"/api/v1/orders/{order.id}/ship", {"trackingNumber": "1Z999"}, format="json")
    assert shipped.status_code == 200
    assert shipped.json()["data"]["status"] == "SHIPPED" and shipped.json()["data"]["trackingNumber"] == "1Z999"
    assert (
        staff_client.post(f"/api/v1/orders/{order.id}/ship", {"trackingNumber": "2"}, format="json").status_code == 409
    )
    delivered = staff_client.post(f"/api/v2/orders/{order.id}/deliver")
    assert delivered.status_code == 200 and delivered.json()["data"]["status"] == "DELIVERED"
    assert [h["toStatus"] for h in delivered.json()["data"]["statusHistory"]] == ["CONFIRMED", "SHIPPED", "DELIVERED"]


def test_staff_who_may_only_ship_get_the_shipped_order_back_not_a_404(customer):
    """A role with ``ship_order`` alone (no ``view_customers``): the order was shipped, and the answer
    read it back as the customer's own orders are read, so it said 404 and the retry 409."""
    from rest_framework.test import APIClient

    from shop.security import staff

    order = OrderFactory(user_id=customer.id, status=OrderStatus.CONFIRMED)
    shipper = APIClient()
    shipper.force_authenticate(UserFactory(staff=True, perms=[staff.SHIP_ORDER]))

    shipped = shipper.post(f"/api/v1/orders/{order.id}/ship", {"trackingNumber": "1Z999"}, format="json")

    assert shipped.status_code == 200, shipped.json()
    assert shipped.json()["data"]["status"] == "SHIPPED"


@pytest.mark.parametrize("query", ["createdTo=9999-12-31", "createdTo=9999-12-31T23:59:59.999999Z"])
def test_a_date_filter_at_the_end_of_the_calendar_is_a_400_not_a_500(customer_api, query):
    response = customer_api.get(f"/api/v1/orders?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert response.json()["error"]["details"] == {"createdTo": ["Date out of range."]}


def test_staff_sees_any_order_and_can_filter_by_customer(staff_client, customer):
    order = OrderFactory(user_id=customer.id)
    OrderFactory()

    assert staff_client.get(f"/api/v1/orders/{order.id}").status_code == 200
    assert staff_client.get("/api/v1/orders").json()["pagination"]["total"] == 2
    assert [o["id"] for o in staff_client.get(f"/api/v1/orders?userId={customer.id}").json()["data"]] == [str(order.id)]


def test_staff_find_orders_by_customer_email_in_any_case_and_customers_may_not(customer_api, staff_client):
    mine = OrderFactory(customer_email="ada@example.com")
    OrderFactory(customer_email="bob@example.com")
    found = staff_client.get("/api/v1/orders", {"email": "ADA@example.com"}).json()["data"]
    assert [o["id"] for o in found] == [str(mine.id)]
    refused = customer_api.get("/api/v1/orders", {"email": "ada@example.com"})
    assert refused.status_code == 400 and "email" in refused.json()["error"]["message"]
