"""Django's PostgreSQL backend, with a pooled connection checked at checkout without a round trip.

psycopg_pool's own check (what Django's ``CONN_HEALTH_CHECKS`` installs on a pool) sends an
empty query on every checkout: a round trip and a transaction the server counts, each time a
request or a task takes a connection (about twelve per checkout order). A connection the server
ended while it sat in the pool (``pg_terminate_backend``, a restart, a failover) has already
said so: the server sends its FATAL message and closes the socket, so the socket is readable,
while an idle healthy connection has nothing to read. So we look at the socket first and run
psycopg_pool's real check only when something arrived; the real check fails on a closed
connection and the pool replaces it instead of handing out a dead one (the 500 that
bench/chaos.py found before pooled connections were checked at all).

Django builds the pool itself and passes ``check=`` only as its own choice, so this backend
sets the check on the pool Django built (``ENGINE = "shop.postgresql"``, config/settings.py).
"""

import select

from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


def check_pooled_connection(conn) -> None:
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN)  # raises if the connection is already closed
    if poller.poll(0):
        ConnectionPool.check_connection(conn)


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        pool = super().pool
        if pool is not None and pool._check is not check_pooled_connection:
            pool._check = check_pooled_connection
        return pool
