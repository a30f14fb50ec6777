"""Orders test data: rows written directly, plus helpers for the API payload and its products."""

import uuid
from decimal import Decimal

import factory

from apps.orders.models import Order, OrderItem, OrderStatus, OrderStatusHistory
from tests.factories.catalog import ProductFactory
from tests.factories.inventory import StockItemFactory


class OrderFactory(factory.django.DjangoModelFactory):
    """A PENDING order with one item (``items=0`` for none); rows only, no events."""

    class Meta:
        model = Order
        database = "orders"
        skip_postgeneration_save = True

    user_id = factory.LazyFunction(uuid.uuid4)
    status = OrderStatus.PENDING
    currency = "USD"
    subtotal = Decimal("20.00")
    shipping_cost = Decimal("5.00")
    total = Decimal("25.00")
    shipping_street = "1 Main St"
    shipping_city = "Springfield"
    shipping_state = "IL"
    shipping_zip_code = "62701"
    shipping_country = "USA"
    shipping_method = "standard"
    payment_token = "tok_visa"

    @factory.post_generation
    def items(self, create, extracted, **kwargs):
        count = 1 if extracted is None else extracted
        for n in range(count):
            OrderItem.objects.create(
                order=self, product_id=uuid.uuid4(), product_name=f"Item {n}", sku=f"SKU-{n}",
                unit_price=Decimal("10.00"), quantity=2, line_total=Decimal("20.00"),
            )  # fmt: skip
        OrderStatusHistory.objects.create(order=self, to_status=self.status, note="factory")


def stocked_products(count: int = 2, *, price: Decimal = Decimal("19.99"), on_hand: int = 10, **product_fields):
    """Active catalog products that have stock in inventory."""
    products = ProductFactory.create_batch(count, price=price, **product_fields)
    for product in products:
        StockItemFactory(product_id=product.id, on_hand=on_hand)
    return products


def order_payload(products, *, quantity: int = 1, **overrides) -> dict:
    """A valid POST /orders body (wire names) for ``products``."""
    body = {
        "items": [{"productId": str(p.id), "quantity": quantity} for p in products],
        "shippingAddress": {
            "street": "1 Main St", "city": "Springfield", "state": "IL", "zipCode": "62701", "country": "USA",
        },
        "shippingMethod": "standard",
        "notes": "Leave at the door",
        "payment": {"method": "card", "token": "tok_visa"},
    }  # fmt: skip
    body.update(overrides)
    return body


def order_placed(customer_api, products, *, quantity: int = 2, token: str = "tok_visa") -> uuid.UUID:
    """An order placed through the API (``POST /api/v1/orders``, asserted 201) by ``customer_api``
    for ``quantity`` of each of ``products``, paid with the fake gateway's ``token``: its id."""
    body = order_payload(products, quantity=quantity, payment={"method": "card", "token": token})
    response = customer_api.post("/api/v1/orders", body, format="json")
    assert response.status_code == 201, response.json()
    return uuid.UUID(response.json()["data"]["id"])
