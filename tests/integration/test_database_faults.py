"""Database faults the fault campaign (bench/chaos.py) found answered with a 500.

Both were seen under load: ``pg_terminate_backend`` of a context database left dead connections
in the web workers' pools (the next request on each failed), and a database refusing
connections for a while answered ``INTERNAL_ERROR`` instead of a retryable 503.
"""

import time

import psycopg
import pytest
from django.db import connections

from shop.postgresql.base import DatabaseWrapper
from tests.conftest import CONTEXT_DBS
from tests.factories.orders import stocked_products


def _admin_dsn(alias: str, dbname: str) -> str:
    params = connections[alias].settings_dict
    return f"host={params['HOST'] or '127.0.0.1'} port={params['PORT'] or 5432} user={params['USER']} dbname={dbname}"


def _terminate(alias: str, pid: int) -> None:
    with psycopg.connect(_admin_dsn(alias, "postgres"), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(100):
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
                return
            time.sleep(0.05)
    raise AssertionError(f"backend {pid} still alive")


@pytest.mark.django_db(databases=["orders"])
def test_a_pooled_connection_the_server_terminated_is_replaced_at_checkout(monkeypatch):
    """The production pooled configuration (``DB_POOL=true``) hands out a live connection after
    the server ended the idle one, instead of the dead one (which failed the request using it)."""
    wrapper = _pooled_wrapper(monkeypatch)
    try:
        pid = _backend_pid(wrapper)
        wrapper.close()  # back to the pool, idle
        _terminate("orders", pid)
        assert _backend_pid(wrapper) != pid
    finally:
        wrapper.close()
        wrapper.close_pool()


@pytest.mark.django_db(databases=["orders"])
def test_a_healthy_pooled_connection_is_handed_out_without_a_round_trip(monkeypatch):
    """The checkout check looks at the socket; the empty query (a round trip and a commit the
    server counts, about twelve per checkout order) runs only when the server has spoken."""
    from psycopg_pool import ConnectionPool

    round_trips = []
    real_check = ConnectionPool.check_connection
    monkeypatch.setattr(ConnectionPool, "check_connection", lambda conn: round_trips.append(1) or real_check(conn))
    wrapper = _pooled_wrapper(monkeypatch)
    try:
        pid = _backend_pid(wrapper)
        for _ in range(5):
            wrapper.close()
            assert _backend_pid(wrapper) == pid  # the same pooled connection each time
        assert round_trips == []
        wrapper.close()
        _terminate("orders", pid)
        assert _backend_pid(wrapper) != pid
        assert round_trips == [1]  # the dead one was checked, failed and replaced
    finally:
        wrapper.close()
        wrapper.close_pool()


def _pooled_wrapper(monkeypatch) -> DatabaseWrapper:
    import config.settings as production

    monkeypatch.setenv("DB_POOL", "true")
    pooled = production._database("orders")
    assert "pool" in pooled["OPTIONS"]
    assert pooled["ENGINE"] == "shop.postgresql"
    settings_dict = {**connections["orders"].settings_dict, **{k: pooled[k] for k in ("OPTIONS", "CONN_HEALTH_CHECKS")}}
    return DatabaseWrapper(settings_dict, alias="pool_probe")


def _backend_pid(wrapper: DatabaseWrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)
def test_a_database_refusing_connections_answers_503_with_the_error_envelope(customer_api):
    """``ALLOW_CONNECTIONS false`` on the inventory database while an order is placed: the client
    gets 503 SERVICE_UNAVAILABLE in the envelope with Retry-After, not a 500."""
    product = stocked_products(1)[0]
    name = connections["inventory"].settings_dict["NAME"]
    connections["inventory"].close()
    with psycopg.connect(_admin_dsn("inventory", "postgres"), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            response = customer_api.post(
                "/api/v1/orders",
                {
                    "items": [{"productId": str(product.id), "quantity": 1}],
                    "shippingAddress": {"street": "1 Main St", "city": "Springfield", "state": "IL",
                                        "zipCode": "62701", "country": "USA"},
                    "shippingMethod": "standard",
                    "payment": {"method": "card", "token": "tok_visa"},
                },
                format="json",
            )  # fmt: skip
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            connections["inventory"].close()
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert response["Retry-After"] == "5"


@pytest.mark.django_db(databases=["orders"])
def test_once_a_refusing_database_accepts_again_the_pool_connects_within_seconds_not_after_its_backoff(monkeypatch):
    """Found by make chaos: after 15 s of ``ALLOW_CONNECTIONS false`` a web process's pool gave a
    503 sixteen seconds after the database was back, its reconnect attempt sleeping a doubling
    pause (1, 2, 4, 8, 16 s) that no waiting request could cut short."""
    from psycopg_pool import PoolTimeout

    wrapper = _pooled_wrapper(monkeypatch)
    pool = wrapper.pool
    pool.open()
    name = connections["orders"].settings_dict["NAME"]
    with psycopg.connect(_admin_dsn("orders", "postgres"), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            refused_since = time.monotonic()
            while time.monotonic() - refused_since < 8:  # requests keep coming while it refuses
                with pytest.raises(PoolTimeout):
                    pool.getconn(timeout=0.5)
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    try:
        back = time.monotonic()
        connection = pool.getconn(timeout=4)  # before: the attempt slept until ~15 s, a PoolTimeout here
        assert time.monotonic() - back < 4
        pool.putconn(connection)
    finally:
        wrapper.close_pool()
