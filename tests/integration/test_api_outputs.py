"""``ModelOutput.represent`` (shop/api/outputs.py): a serializer built once per class and thread,
responses and context exactly those of a serializer built for the call."""

import threading
from decimal import Decimal

import pytest

from apps.orders.serializers import OrderDetailV1, OrderV2
from shop.api import outputs
from tests.factories.orders import OrderFactory

pytestmark = pytest.mark.django_db(databases=["orders"])


def test_each_response_has_its_own_values_while_the_serializer_is_built_once_per_class_and_thread():
    first = OrderFactory(total=Decimal("25.00"), items=1)
    second = OrderFactory(total=Decimal("99.50"), status="CONFIRMED", items=2)

    one = OrderDetailV1.represent(first)
    built = dict(outputs._BUILT.serializers)
    two = OrderDetailV1.represent(second)

    assert one == OrderDetailV1(first).data and two == OrderDetailV1(second).data
    assert (one["id"], one["total"], one["status"], len(one["items"])) == (str(first.id), "25.00", "PENDING", 1)
    assert (two["id"], two["total"], two["status"], len(two["items"])) == (str(second.id), "99.50", "CONFIRMED", 2)
    assert outputs._BUILT.serializers == built  # the second response built nothing
    assert OrderDetailV1.represent([first, second], many=True) == [one, two]

    other_thread = []
    thread = threading.Thread(target=lambda: other_thread.append(dict(getattr(outputs._BUILT, "serializers", {}))))
    thread.start()
    thread.join()
    assert other_thread == [{}]  # another thread builds its own: no serializer is shared by two threads


def test_the_context_is_the_callers_for_one_call_only():
    order = OrderFactory(items=1)
    customer = {"id": str(order.user_id), "name": "Ada L."}

    named = OrderV2.represent(order, context={"customers": {order.user_id: customer}})
    unnamed = OrderV2.represent(order, context={"customers": {}})

    assert named["customer"] == customer and unnamed["customer"] is None
    assert named == OrderV2(order, context={"customers": {order.user_id: customer}}).data
