"""``ModelOutput`` (shop/api/outputs.py): field specs worked out once per class, responses unchanged."""

from decimal import Decimal

import pytest

from apps.orders.serializers import OrderDetailV1, OrderItemV1
from shop.api import outputs
from tests.factories.orders import OrderFactory


@pytest.mark.django_db(databases=["orders"])
def test_each_response_has_its_own_fields_while_the_specs_are_worked_out_once_per_class_and_field():
    first = OrderFactory(total=Decimal("25.00"), items=1)
    second = OrderFactory(total=Decimal("99.50"), status="CONFIRMED", items=2)

    one = OrderDetailV1(first).data
    specs = dict(outputs._FIELD_SPECS)
    two = OrderDetailV1(second).data

    assert (one["id"], one["total"], one["status"], len(one["items"])) == (str(first.id), "25.00", "PENDING", 1)
    assert (two["id"], two["total"], two["status"], len(two["items"])) == (str(second.id), "99.50", "CONFIRMED", 2)
    assert specs == outputs._FIELD_SPECS  # the second response worked nothing out again
    assert (OrderItemV1, "unit_price", 0) in specs and (OrderDetailV1, "total", 0) in specs
    assert one["items"][0]["product_name"] == "Item 0" and two["items"][1]["sku"] == "SKU-1"
