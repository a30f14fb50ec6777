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

It also records, for the request being served, whether anything durable may have happened
(``shop.durability``): a commit attempted, or a write statement run in autocommit mode. A
request whose session died before either can be re-run on a fresh one
(``shop.api.middleware.DatabaseRetryMiddleware``).
"""

import select

from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool

from shop import durability


def check_pooled_connection(conn) -> None:
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN)  # raises if the connection is already closed
    if poller.poll(0):
        ConnectionPool.check_connection(conn)


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # First in the list, so it is the outermost wrapper: it notes before any other runs.
        self.execute_wrappers.append(self._note_autocommit_write)

    def _note_autocommit_write(self, execute, sql, params, many, context):
        """A statement outside ``atomic`` commits on its own: note it unless it only reads.

        Inside ``atomic`` (savepoints included) nothing is durable before the COMMIT, which
        ``_commit`` notes; so do Django's own ``atomic(savepoint=False)`` blocks around multi-table
        saves, deletes and ``bulk_create``. ``executemany`` comes through here once, with
        ``many=True``. Anything not starting with SELECT counts as a write: wrongly counting one
        only costs a request its re-run, never a repeated write. Noted *before* it runs, since a
        statement whose answer is lost may still have committed."""
        if (
            not self.in_atomic_block
            and self.autocommit
            and durability.recording()
            and not (isinstance(sql, str) and sql[:32].lstrip()[:6].upper() == "SELECT")
        ):
            durability.note()
        return execute(sql, params, many, context)

    def _commit(self):
        durability.note_commit(self.alias)  # before: a COMMIT whose answer is lost has an unknown outcome
        return super()._commit()

    @property
    def pool(self):
        pool = super().pool
        if pool is not None and pool._check is not check_pooled_connection:
            pool._check = check_pooled_connection
        return pool
