"""``shop.db``'s compiler-free inserts behave as ``save()`` would for what their callers use."""

import uuid

import pytest

from apps.orders.models import Order, OrderStatus, OrderStatusHistory
from apps.orders.saga.models import CheckoutSaga
from shop.db import insert_objects, insert_rows, insert_unless_exists
from tests.factories.orders import OrderFactory


@pytest.mark.django_db(databases=["orders"])
def test_insert_objects_fills_auto_now_on_the_instance_and_a_later_save_updates_the_same_row():
    saga = CheckoutSaga(order_id=uuid.uuid4())
    insert_objects([saga], using="orders")
    assert saga.created_at is not None and saga.updated_at is not None
    saga.step_attempts = 3
    saga.save(update_fields=["step_attempts"])  # an UPDATE: the instance knows it is saved
    assert CheckoutSaga.objects.get(pk=saga.pk).step_attempts == 3
    assert CheckoutSaga.objects.count() == 1


@pytest.mark.django_db(databases=["orders"])
def test_insert_rows_writes_every_row_in_one_statement_with_defaults(django_assert_num_queries):
    order = OrderFactory()
    rows = [{"order": order, "to_status": OrderStatus.PENDING, "note": f"n{i}"} for i in range(3)]
    with django_assert_num_queries(1, using="orders"):
        insert_rows(OrderStatusHistory, using="orders", rows=rows)
    assert {h.note for h in OrderStatusHistory.objects.filter(order=order, note__startswith="n")} == {"n0", "n1", "n2"}


@pytest.mark.django_db(databases=["orders"])
def test_insert_unless_exists_reports_whether_it_wrote():
    order = OrderFactory()
    saga_id = uuid.uuid4()
    assert insert_unless_exists(CheckoutSaga, using="orders", conflict=("order_id",), id=saga_id, order_id=order.id)
    assert not insert_unless_exists(CheckoutSaga, using="orders", conflict=("order_id",), order_id=order.id)
    assert CheckoutSaga.objects.get(order_id=order.id).pk == saga_id
    assert Order.objects.count() == 1
