"""PostgreSQL parses and plans a statement the application repeats once per connection, not per call."""

import uuid

import pytest
from django.db import connections

from apps.orders.saga.models import CheckoutSaga
from shop.db import select_object


@pytest.mark.django_db(databases=["orders"])
def test_a_statement_run_five_times_on_a_connection_is_prepared_on_the_server():
    order_id = uuid.uuid4()
    CheckoutSaga.objects.create(order_id=order_id)
    for _ in range(6):
        assert select_object(CheckoutSaga, using="orders", order_id=order_id).order_id == order_id

    with connections["orders"].cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('FROM "orders_checkoutsaga"' in sql for sql in prepared), prepared
