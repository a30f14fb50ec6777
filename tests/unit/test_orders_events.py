import uuid

import pytest

from apps.orders.events import ORDER_CREATED
from shop.events import registry
from shop.events.envelope import Envelope


def test_order_created_is_published_as_v2():
    assert registry.latest_version(ORDER_CREATED) == 2


def test_a_v1_event_is_upcast_to_v2_before_handlers_see_it():
    order_id, product_id = str(uuid.uuid4()), str(uuid.uuid4())
    v1 = Envelope(
        type=ORDER_CREATED,
        version=1,
        aggregate_id=order_id,
        data={"orderId": order_id, "items": [{"productId": product_id, "quantity": 2}]},
    )

    v2 = registry.upcast(v1)

    assert v2.version == 2
    assert v2.data["items"] == [{"productId": product_id, "quantity": 2, "price": None}]
    assert v2.data["customerId"] is None and v2.data["total"] is None


def test_v2_schema_refuses_a_card_token_and_float_money():
    base = {
        "orderId": str(uuid.uuid4()),
        "customerId": str(uuid.uuid4()),
        "currency": "USD",
        "total": "10.00",
        "paymentMethod": "card",
        "items": [{"productId": str(uuid.uuid4()), "quantity": 1, "price": "5.00"}],
    }
    registry.validate(ORDER_CREATED, 2, base)
    with pytest.raises(registry.EventSchemaError):
        registry.validate(ORDER_CREATED, 2, {**base, "paymentToken": "tok_visa"})
    with pytest.raises(registry.EventSchemaError):
        registry.validate(ORDER_CREATED, 2, {**base, "total": 10.0})
