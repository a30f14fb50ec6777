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

import psycopg
import pytest
from django.contrib.admin.models import LogEntry
from django.db import OperationalError, connections, transaction
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
def test_an_order_post_re_run_after_its_session_was_terminated_is_counted_once_by_the_rate_limits(
    customer_api, settings
):
    """One order a minute allowed: the first attempt is counted and let through, its session dies,
    and the re-run is the same request. Counted again, the re-run answered 429 instead of the order."""
    settings.RATELIMIT_ORDERS = "1/m"

    with _terminated_at("orders", "INSERT", ORDERS) as struck:
        response = _order_post(customer_api, order_payload(stocked_products(1)))

    assert len(struck) == 1
    assert response.status_code == 201, response.content
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
def test_staff_ship_whose_accounts_session_is_terminated_after_the_ship_committed_ships_once_with_its_audit_record(
    staff_client,
):
    """Found by make chaos: the ship committed on orders, then the accounts session died writing
    the staff audit record; the staff member got a 503 and the order shipped with no record of
    who shipped it. A re-run of the request would ship again (409 at best), so only the audit
    write is tried again, on a fresh session."""
    order = OrderFactory(status=OrderStatus.CONFIRMED)

    with (
        _terminated_at("orders", "UPDATE", ORDERS, every=True, instead=_counted) as ships,
        _terminated_at("accounts", "INSERT", AUDIT) as audits,
    ):
        response = staff_client.post(f"/api/v1/orders/{order.id}/ship", {"trackingNumber": "1Z9"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["data"]["status"] == "SHIPPED"
    assert len(audits) == 1 and len(ships) == 1  # the ship ran once
    assert LogEntry.objects.filter(object_id=str(order.id)).count() == 1


@pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)
def test_session_lost_twice_after_the_ship_committed_answers_503_and_the_ship_is_not_rerun(staff_client):
    """Once the ship has committed, a re-run of the request is no longer safe: when the audit
    write fails on its fresh session too, the client gets the 503."""
    order = OrderFactory(status=OrderStatus.CONFIRMED)

    with (
        _terminated_at("orders", "UPDATE", ORDERS, every=True, instead=_counted) as ships,
        _terminated_at("accounts", "INSERT", AUDIT, every=True) as audits,
    ):
        response = staff_client.post(f"/api/v1/orders/{order.id}/ship", {"trackingNumber": "1Z9"}, format="json")

    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert len(audits) == 2 and len(ships) == 1  # the audit twice, the ship once
    assert not LogEntry.objects.filter(object_id=str(order.id)).exists()


@contextlib.contextmanager
def _first_orders_commit(strike):
    """Run ``strike(commit)`` instead of the first COMMIT on the orders database."""
    connection = connections["orders"]
    struck = []

    def commit():
        if struck:
            return original()
        struck.append(connection.connection.info.backend_pid)
        return strike(original)

    original = connection._commit
    connection._commit = commit
    try:
        yield struck
    finally:
        del connection._commit
        for each in connections.all(initialized_only=True):
            each.close()


@pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)
def test_order_post_with_idempotency_key_whose_session_dies_at_its_commit_is_created_once(customer_api):
    """Found by make chaos: the orders session was terminated as the keyed POST committed
    ("consuming input failed"), the outcome was unknown, and the client got a 503. The key
    tells a re-run the outcome, so the request is re-run: here the commit never landed, and the
    re-run creates the order."""
    payload = order_payload(stocked_products(1))

    def terminated(commit):
        _terminate("orders", connections["orders"].connection.info.backend_pid)
        return commit()

    with _first_orders_commit(terminated) as struck:
        response = _order_post(customer_api, payload, HTTP_IDEMPOTENCY_KEY="chaos-commit-1")

    assert len(struck) == 1
    assert response.status_code == 201, response.content
    assert Order.objects.count() == 1
    assert IdempotencyRecord.objects.get().status == IdempotencyRecord.Status.COMPLETED


@pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)
def test_order_post_with_idempotency_key_whose_commit_answer_is_lost_answers_with_the_committed_order(customer_api):
    """The other way a COMMIT's outcome is unknown: it landed and the answer was lost. The
    re-run finds the key COMPLETED and answers with the order the first attempt created."""
    payload = order_payload(stocked_products(1))

    def landed_then_lost(commit):
        commit()
        _terminate("orders", connections["orders"].connection.info.backend_pid)
        raise OperationalError("consuming input failed: server closed the connection unexpectedly") from (
            psycopg.OperationalError("server closed the connection unexpectedly")
        )

    with _first_orders_commit(landed_then_lost) as struck:
        response = _order_post(customer_api, payload, HTTP_IDEMPOTENCY_KEY="chaos-commit-2")

    assert len(struck) == 1
    assert response.status_code == 201, response.content
    order = Order.objects.get()
    assert response.json()["data"]["id"] == str(order.id)


@pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)
def test_order_post_without_key_whose_session_dies_at_its_commit_answers_503(customer_api):
    """Without a key nothing tells a re-run whether the first commit landed: the 503 stands."""

    def terminated(commit):
        _terminate("orders", connections["orders"].connection.info.backend_pid)
        return commit()

    with _first_orders_commit(terminated) as struck:
        response = _order_post(customer_api, order_payload(stocked_products(1)))

    assert len(struck) == 1
    assert response.status_code == 503, response.content
    assert Order.objects.count() == 0


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
