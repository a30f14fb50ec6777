"""``shop.db``'s compiler-free reads and updates give what the ORM gives, in one statement each."""

import uuid
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
from django.db import OperationalError, connections, transaction
from django.utils import timezone

from apps.orders.models import Order
from apps.orders.saga.models import CheckoutSaga
from shop.db import select_object, select_objects, update_object, update_rows
from tests.factories.orders import OrderFactory
from tests.integration.test_database_faults import _admin_dsn

FIELDS = [field.attname for field in CheckoutSaga._meta.concrete_fields]


def _saga(**fields) -> CheckoutSaga:
    return CheckoutSaga.objects.create(order_id=uuid.uuid4(), **fields)


def _as_orm_reads(obj) -> dict:
    return {name: getattr(obj, name) for name in FIELDS}


@pytest.mark.django_db(databases=["orders"])
def test_select_objects_returns_the_rows_the_orm_returns_with_json_datetimes_and_order(django_assert_num_queries):
    sagas = [
        _saga(data={"paymentAttempted": True, "shortages": [{"available": 1}]}, deadline=timezone.now()),
        _saga(data={}, step_attempts=2),
        _saga(),
    ]
    wanted = [sagas[0].order_id, sagas[1].order_id]

    with django_assert_num_queries(1, using="orders"):
        found = select_objects(CheckoutSaga, using="orders", order_by=("-order_id",), order_id__in=wanted)

    expected = CheckoutSaga.objects.filter(order_id__in=wanted).order_by("-order_id")
    assert [_as_orm_reads(s) for s in found] == [_as_orm_reads(s) for s in expected]
    assert found[0]._state.adding is False and found[0]._state.db == "orders"


@pytest.mark.django_db(databases=["orders"])
def test_select_object_gives_decimals_and_none_when_nothing_matches():
    order = OrderFactory(total=Decimal("12.30"))

    assert select_object(Order, using="orders", pk=order.pk).total == Decimal("12.30")
    assert select_object(Order, using="orders", pk=uuid.uuid4()) is None


@pytest.mark.django_db(transaction=True, databases=["orders"])
def test_select_object_with_lock_holds_the_row_until_the_transaction_ends():
    saga = _saga()
    table = CheckoutSaga._meta.db_table
    dbname = connections["orders"].settings_dict["NAME"]
    with psycopg.connect(_admin_dsn("orders", dbname), autocommit=True) as other:
        with transaction.atomic(using="orders"):
            assert select_object(CheckoutSaga, using="orders", lock=True, order_id=saga.order_id).pk == saga.pk
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute(f'SELECT 1 FROM "{table}" WHERE id = %s FOR UPDATE NOWAIT', [saga.pk])
        other.execute(f'SELECT 1 FROM "{table}" WHERE id = %s FOR UPDATE NOWAIT', [saga.pk])  # released


@pytest.mark.django_db(databases=["orders"])
def test_update_object_writes_only_its_fields_and_sets_auto_now(django_assert_num_queries):
    saga = _saga(step_attempts=1)
    before = saga.updated_at
    CheckoutSaga.objects.filter(pk=saga.pk).update(cancel_reason="written by someone else")
    saga.step_attempts, saga.data = 3, {"k": [1, 2]}
    saga.cancel_reason = "not to be written"

    with django_assert_num_queries(1, using="orders"):
        update_object(saga, ["step_attempts", "data", "updated_at"], using="orders")

    stored = CheckoutSaga.objects.get(pk=saga.pk)
    assert (stored.step_attempts, stored.data) == (3, {"k": [1, 2]})
    assert stored.cancel_reason == "written by someone else"
    assert stored.updated_at == saga.updated_at > before


@pytest.mark.django_db(databases=["orders"])
def test_update_rows_changes_the_matching_rows_only():
    sagas = [_saga(), _saga(), _saga()]
    later = timezone.now() + timedelta(minutes=5)

    update_rows(CheckoutSaga, using="orders", values={"deadline": later}, pk__in=[sagas[0].pk, sagas[1].pk])

    assert {s.pk for s in CheckoutSaga.objects.filter(deadline=later)} == {sagas[0].pk, sagas[1].pk}
    with pytest.raises(ValueError, match="only equality and __in"):
        update_rows(CheckoutSaga, using="orders", values={"deadline": None}, step_attempts__gt=0)


@pytest.mark.django_db(databases=["orders"])
def test_select_object_with_only_reads_those_columns_and_defers_the_rest(django_assert_num_queries):
    saga = _saga(data={"big": "x" * 100}, step_attempts=3)

    found = select_object(CheckoutSaga, using="orders", only=("order_id", "step_attempts"), order_id=saga.order_id)

    assert (found.order_id, found.step_attempts) == (saga.order_id, 3)
    assert found.get_deferred_fields() == {f for f in FIELDS if f not in ("order_id", "step_attempts")}


@pytest.mark.django_db(transaction=True, databases=["orders"])
def test_statements_of_one_database_session_share_a_cursor_and_a_new_session_gets_its_own():
    connection = connections["orders"]
    saga = _saga()
    select_object(CheckoutSaga, using="orders", order_id=saga.order_id)
    kept = connection._shop_kept_cursor
    update_rows(CheckoutSaga, using="orders", values={"step_attempts": 2}, order_id=saga.order_id)
    assert connection._shop_kept_cursor is kept

    # The server ends the session: the statement fails as any would, and once Django has replaced
    # the connection the next statement runs on a cursor of the new session.
    with psycopg.connect(_admin_dsn("orders", "postgres"), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
    with pytest.raises(OperationalError):
        select_object(CheckoutSaga, using="orders", order_id=saga.order_id)
    connection.close()

    assert select_object(CheckoutSaga, using="orders", order_id=saga.order_id).step_attempts == 2
    assert connection._shop_kept_cursor is not kept
    assert connection._shop_kept_cursor.cursor.connection is connection.connection


@pytest.mark.django_db(databases=["orders"])
def test_select_object_with_only_gives_each_field_its_own_value_whatever_the_order_asked():
    order = OrderFactory(total=Decimal("25.00"), currency="EUR", payment_token="tok_visa")

    found = select_object(Order, using="orders", only=("total", "currency", "payment_token"), pk=order.pk)

    assert (found.total, found.currency, found.payment_token) == (Decimal("25.00"), "EUR", "tok_visa")


@pytest.mark.django_db(databases=["orders"], transaction=True)
def test_inside_a_transaction_statements_skip_djangos_wrapper_chain_but_keep_its_errors_and_any_added_wrapper(
    monkeypatch,
):
    from django.db import IntegrityError
    from django.db.backends import utils
    from django.db.transaction import TransactionManagementError

    from shop.db import insert_row

    saga = _saga()
    chained = []
    through_chain = utils.CursorWrapper._execute_with_wrappers
    monkeypatch.setattr(
        utils.CursorWrapper,
        "_execute_with_wrappers",
        lambda self, sql, *rest, **kw: chained.append(sql) or through_chain(self, sql, *rest, **kw),
    )
    with transaction.atomic(using="orders"):
        select_object(CheckoutSaga, using="orders", lock=True, order_id=saga.order_id)
    assert chained == []  # the database cursor, directly

    with pytest.raises(TransactionManagementError), transaction.atomic(using="orders"):
        with pytest.raises(IntegrityError), transaction.atomic(using="orders", savepoint=False):
            insert_row(CheckoutSaga, using="orders", order_id=saga.order_id)  # deferred: waits for the next read
            select_object(CheckoutSaga, using="orders", order_id=saga.order_id)  # Django's error, not psycopg's
        select_object(CheckoutSaga, using="orders", order_id=saga.order_id)  # the transaction is broken

    seen = []
    counting = connections["orders"].execute_wrapper(lambda run, sql, *rest: seen.append(sql) or run(sql, *rest))
    with counting, transaction.atomic(using="orders"):
        select_object(CheckoutSaga, using="orders", order_id=saga.order_id)
    assert len(seen) == 1 and "orders_checkoutsaga" in seen[0]


@pytest.mark.django_db(databases=["inventory"])
def test_update_objects_writes_each_row_its_own_values_in_one_statement_and_sets_auto_now(django_assert_num_queries):
    from apps.inventory.models import StockItem
    from shop.db import update_objects

    items = [StockItem.objects.create(product_id=uuid.uuid4(), on_hand=10 * n, reserved=n) for n in (1, 2, 3)]
    untouched = StockItem.objects.create(product_id=uuid.uuid4(), on_hand=7, reserved=0)
    before = timezone.now()
    for n, item in enumerate(items, start=1):
        item.on_hand, item.reserved = 100 + n, 50 + n

    with django_assert_num_queries(1, using="inventory"):
        update_objects(items, ["on_hand", "reserved", "updated_at"], using="inventory")

    stored = {i.pk: i for i in StockItem.objects.all()}
    assert [(stored[i.pk].on_hand, stored[i.pk].reserved) for i in items] == [(101, 51), (102, 52), (103, 53)]
    assert all(stored[i.pk].updated_at >= before and stored[i.pk].updated_at == i.updated_at for i in items)
    assert (stored[untouched.pk].on_hand, stored[untouched.pk].updated_at) == (7, untouched.updated_at)
