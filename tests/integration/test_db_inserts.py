"""``shop.db``'s compiler-free inserts behave as ``save()`` would for what their callers use."""

import uuid

import pytest
from django.utils import timezone

from apps.orders.models import Order, OrderStatus, OrderStatusHistory
from apps.orders.saga.models import CheckoutSaga, SagaStepLog
from shop.db import insert_objects, insert_row, insert_rows, insert_unless_exists
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


@pytest.mark.django_db(databases=["orders"])
def test_insert_row_stores_what_save_would_from_field_values_related_objects_and_defaults():
    order = OrderFactory()
    saga = CheckoutSaga(order_id=order.id, data={"k": [1, "x"]}, deadline=timezone.now(), step_attempts=2)
    saga.save()
    by_save = SagaStepLog(saga=saga, step="RESERVE_STOCK", attempt=1, outcome="SENT", detail="d")
    by_save.save()

    insert_row(SagaStepLog, using="orders", saga=saga, step="RESERVE_STOCK", attempt=1, outcome="SENT", detail="d")
    insert_row(CheckoutSaga, using="orders", order_id=uuid.uuid4(), data={"k": [1, "x"]}, step_attempts=2)

    by_insert = SagaStepLog.objects.exclude(pk=by_save.pk).get(saga=saga)
    columns = ("saga_id", "step", "attempt", "outcome", "detail")
    assert [getattr(by_insert, c) for c in columns] == [getattr(by_save, c) for c in columns]
    assert by_insert.created_at >= by_save.created_at
    inserted = CheckoutSaga.objects.exclude(pk=saga.pk).get()
    assert (inserted.data, inserted.step_attempts, inserted.status) == ({"k": [1, "x"]}, 2, saga.status)
    assert inserted.id is not None and inserted.id != saga.id  # the primary key's default ran


@pytest.mark.django_db(databases=["orders"])
def test_insert_row_refuses_a_name_that_is_not_a_field_of_the_model():
    with pytest.raises(TypeError, match="no field"):
        insert_row(SagaStepLog, using="orders", saga_id=uuid.uuid4(), outcome="SENT", colour="blue")
