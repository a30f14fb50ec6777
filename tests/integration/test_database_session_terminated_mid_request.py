"""A request whose database session the server terminated mid-request (``pg_terminate_backend``).

The fault campaign (RELIABILITY.md, 10,000 orders) saw three 503s outside any refusal window: two
order POSTs with an Idempotency-Key and one staff ship were using an orders session when it was
terminated. Nothing had been committed yet, so the request is re-run once on a fresh session
(``DatabaseRetryMiddleware``): the client sees the answer its own retry would have got. Once
something was committed (or the error is a statement timeout) the 503 stands.

Each test terminates the real backend from a separate admin connection, from inside the
statement the view is about to run.
"""

import contextlib

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connections, transaction
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from apps.orders.models import IdempotencyRecord, Order, OrderStatus, OrderStatusHistory
from shop import durability
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import UserFactory
from tests.factories.orders import OrderFactory, order_payload, stocked_products
from tests.integration.test_database_faults import _terminate

ORDERS = f'"{Order._meta.db_table}"'
AUDIT = f'"{LogEntry._meta.db_table}"'


def _terminate_session(execute, sql, params, many, context):
    _terminate(context["connection"].alias, context["connection"].connection.info.backend_pid)
    return execute(sql, params, many, context)


def _counted(execute, sql, params, many, context):
    return execute(sql, params, many, context)


@contextlib.contextmanager
def _terminated_at(alias: str, prefix: str, table: str, *, every: bool = False, instead=_terminate_session):
    """Terminate ``alias``'s session when it is about to run a ``prefix`` statement on ``table``
    (the first such statement, or ``every`` one), or do ``instead``; yields the statements it struck."""
    struck: list[str] = []

    def wrapper(execute, sql, params, many, context):
        if sql.startswith(prefix) and table in sql and (every or not struck):
            struck.append(sql)
            return instead(execute, sql, params, many, context)
        return execute(sql, params, many, context)

    with connections[alias].execute_wrapper(wrapper):
        yield struck
    for connection in connections.all(initialized_only=True):
        connection.close()  # nothing leaks a dead or altered session into the next test


def _order_post(client, payload, **headers):
    return client.post("/api/v1/orders", payload, format="json", **headers)


@pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)
def test_order_post_with_idempotency_key_whose_orders_session_is_terminated_is_created_once(customer_api):
    payload = order_payload(stocked_products(1))

    with _terminated_at("orders", "INSERT", ORDERS) as struck:
        response = _order_post(customer_api, payload, HTTP_IDEMPOTENCY_KEY="chaos-1")

    assert len(struck) == 1
    assert response.status_code == 201, response.content
    assert Order.objects.count() == 1
    record = IdempotencyRecord.objects.get()
    assert record.status == IdempotencyRecord.Status.COMPLETED
    replay = _order_post(customer_api, payload, HTTP_IDEMPOTENCY_KEY="chaos-1")
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    assert replay.json() == response.json()
    assert Order.objects.count() == 1


@pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)
def test_order_post_without_key_whose_orders_session_is_terminated_is_created_once(customer_api):
    with _terminated_at("orders", "INSERT", ORDERS) as struck:
        response = _order_post(customer_api, order_payload(stocked_products(1)))

    assert len(struck) == 1
    assert response.status_code == 201, response.content
    assert Order.objects.count() == 1


@pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)
def test_staff_ship_whose_orders_session_is_terminated_in_the_ship_transaction_ships_once():
    """With a real bearer token, as make chaos sent it: authentication (which reads the staff
    user on every request) records nothing that would stop the re-run."""
    order = OrderFactory(status=OrderStatus.CONFIRMED)
    staff_client = APIClient()
    staff_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(UserFactory(staff=True))}")

    with _terminated_at("orders", "UPDATE", ORDERS) as struck:
        response = staff_client.post(f"/api/v1/orders/{order.id}/ship", {"trackingNumber": "1Z9"}, format="json")

    assert len(struck) == 1
    assert response.status_code == 200, response.content
    assert response.json()["data"]["status"] == "SHIPPED"
    assert OrderStatusHistory.objects.filter(order=order, to_status=OrderStatus.SHIPPED).count() == 1
    assert LogEntry.objects.filter(object_id=str(order.id)).count() == 1


@pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)
def test_read_whose_orders_session_is_terminated_answers_200(customer_api, customer):
    order = OrderFactory(user_id=customer.id)

    with _terminated_at("orders", "SELECT", ORDERS) as struck:
        response = customer_api.get(f"/api/v1/orders/{order.id}")

    assert len(struck) == 1
    assert response.status_code == 200, response.content
    assert response.json()["data"]["id"] == str(order.id)


@pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)
def test_session_terminated_after_the_ship_committed_answers_503_and_is_not_rerun(staff_client):
    """The ship committed on orders, then the accounts session died writing the staff audit
    record: a re-run would ship again (409 at best); the client gets the 503."""
    order = OrderFactory(status=OrderStatus.CONFIRMED)

    with (
        _terminated_at("orders", "UPDATE", ORDERS, every=True, instead=_counted) as ships,
        _terminated_at("accounts", "INSERT", AUDIT, every=True) as audits,
    ):
        response = staff_client.post(f"/api/v1/orders/{order.id}/ship", {"trackingNumber": "1Z9"}, format="json")

    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert len(audits) == 1 and len(ships) == 1  # one attempt: the ship did not run again
    assert not LogEntry.objects.filter(object_id=str(order.id)).exists()


@pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)
def test_statement_timeout_answers_503_and_is_not_rerun(customer_api, customer):
    """A statement timeout says the database is slow: a re-run would double the load."""
    order = OrderFactory(user_id=customer.id)

    def too_slow(execute, sql, params, many, context):
        context["connection"].connection.execute("SET statement_timeout = 20")
        return execute("SELECT pg_sleep(1)", None, False, context)

    with _terminated_at("orders", "SELECT", ORDERS, every=True, instead=too_slow) as struck:
        response = customer_api.get(f"/api/v1/orders/{order.id}")

    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert len(struck) == 1


@pytest.mark.django_db(transaction=True, databases=["orders"])
def test_what_the_engine_records_as_durable():
    """Commits (attempted) and autocommit writes are durable; reads and rolled-back transactions
    are not."""

    def durable_after(work) -> bool:
        with durability.attempt() as attempt:
            work()
        return attempt.durable

    def statement(sql):
        with connections["orders"].cursor() as cursor:
            cursor.execute(sql)

    def rolled_back():
        with contextlib.suppress(RuntimeError), transaction.atomic(using="orders"):
            OrderFactory()
            raise RuntimeError

    def empty_transaction():
        with transaction.atomic(using="orders"):
            pass

    assert not durable_after(lambda: list(Order.objects.all()))
    assert not durable_after(lambda: statement("  select 1"))
    assert not durable_after(rolled_back)
    assert durable_after(lambda: statement(f"UPDATE {ORDERS} SET notes = '' WHERE false"))
    assert durable_after(OrderFactory)  # the order, its items and history: autocommit writes
    assert durable_after(empty_transaction)  # a commit is a commit, even of nothing
    with transaction.atomic(using="orders"):
        assert not durable_after(OrderFactory)  # inside a transaction only its commit counts
