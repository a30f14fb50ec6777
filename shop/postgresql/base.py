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

**Writes that travel together** (``defer_write``, used by ``shop.db``). Each statement was a
round trip: the client sends it and sleeps, the server wakes, answers and sleeps. Most of a
checkout's writes (an outbox row, a log line, a ledger entry) return nothing anyone reads, so
inside a transaction they wait on the connection and leave together as one query string, before
whatever next needs an answer (a read) or with the COMMIT. Measured with plain psycopg (2,000
transactions of an inbox-style insert and five inserts each, interleaved, ``bench``-less probe):
client CPU 923-938 -> 426-452 µs and server CPU 785-820 -> 500-560 µs per transaction; with two
CPU hogs on the two cores, 749-774 -> 389-400 and 670-685 -> 455-485 µs. psycopg's pipeline
mode was tried first: it saved as much on an idle machine but nothing under that load (its
per-statement bookkeeping and polls cost what the round trips had), so it was dropped.

What keeps the semantics: a deferred write is sent before any other statement made through
Django or ``shop.db`` on the connection (a read, an ORM statement, a savepoint) and before the
COMMIT, in the order it was made, so everything reads what it would have read. Writes are
deferred only in the outermost transaction with no savepoint open (inside a test's transaction,
or under a savepoint, each runs at once) and never while Django logs queries. A failing
deferred write is raised by the statement or COMMIT it travelled with, and the transaction is
marked for rollback and rolls back whole. A rollback discards what is still waiting. With
tracing on, each such string is a client span of its own (its statements' templates, no values).
"""

import contextlib
import select

import psycopg
from django.db.backends.postgresql import base
from django.db.backends.utils import debug_transaction
from opentelemetry.trace import SpanKind
from psycopg import pq
from psycopg_pool import ConnectionPool

from shop import durability
from shop.observability import tracing


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
        # In order: (the statement as written, for the trace; the same with its values bound).
        self._deferred_writes: list[tuple[str, str]] = []
        self._binding_cursor: psycopg.ClientCursor | None = None

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
        if self._deferred_writes:  # an ORM statement, a savepoint: what waits goes first
            with self.wrap_database_errors:
                self._send_deferred()
        return execute(sql, params, many, context)

    # --- writes that travel with the next round trip -------------------------------------------

    def defer_write(self, sql: str, params: list) -> bool:
        """Queue a write whose answer nobody reads; False when it must run now instead.

        Inside an ``atomic`` savepoint each write runs at once (a savepoint taken with
        ``transaction.savepoint()`` is not tracked: its writes wait, and are sent before its
        ``ROLLBACK TO``/``RELEASE``, which stays correct; none is taken on a hot path)."""
        if (
            not self.in_atomic_block
            or any(self.savepoint_ids)
            or self.needs_rollback
            or self.queries_logged
            or self.connection is None
        ):
            return False
        # Bound now, one statement at a time: psycopg keeps the parsed form of a statement it has
        # seen (up to 4 kB and 50 values), which the joined string of a whole transaction is not.
        with self.wrap_database_errors:
            self._deferred_writes.append((sql, self._binder().mogrify(sql, params)))
        return True

    def _binder(self) -> psycopg.ClientCursor:
        """A cursor of this session that binds values into statement text (psycopg's quoting)."""
        cursor = self._binding_cursor
        if cursor is None or cursor.connection is not self.connection or cursor.closed:
            cursor = self._binding_cursor = psycopg.ClientCursor(self.connection)
        return cursor

    def execute_now(self, cursor, sql: str, params: list, *, fetch: bool):
        """Run a statement inside ``atomic`` whose answer is wanted (rows, or the count when not
        ``fetch``) on ``cursor`` (a psycopg cursor of this connection), the waiting writes first."""
        with self.wrap_database_errors:
            if self._deferred_writes:
                self._send_deferred()
            cursor.execute(sql, params)
            return cursor.fetchall() if fetch else cursor.rowcount

    def _send_deferred(self, *, commit: bool = False) -> None:
        """The waiting writes, and the COMMIT when ``commit``, as one query string: one round trip.

        The values were bound into each statement's text by psycopg when it was deferred
        (``ClientCursor.mogrify``: the driver's own quoting, per value type, never ours), and the
        server runs the statements in order, stopping at the first error. psycopg sends a BEGIN
        as a round trip of its own before a transaction's first statement; when nothing has been
        sent yet and this commits, the BEGIN goes in the string instead, psycopg told it is in
        autocommit mode meanwhile (allowed: no transaction is open on its side). If a statement
        fails there, the same round trip's transaction is rolled back before psycopg's mode is
        restored, and the error is raised. (A connection with its own isolation level, read-only
        or deferrable mode keeps psycopg's BEGIN, which carries them.)

        A failure marks the transaction for rollback, as Django does when a statement fails under
        ``atomic(savepoint=False)``: the error may surface where a caller handles errors of its own
        (a nested ``atomic``'s SAVEPOINT sends the writes), and PostgreSQL answers a COMMIT of an
        aborted transaction with a rollback, not an error, so the transaction must not reach it."""
        writes, self._deferred_writes = self._deferred_writes, []
        if commit:
            writes.append(("COMMIT", "COMMIT"))
        statements = [bound for _, bound in writes]
        try:
            with self._traced([template for template, _ in writes]):
                if commit and self._nothing_sent_yet():
                    self._send_with_begin(statements)
                else:
                    self._binder().execute("; ".join(statements))  # no values left to bind
        except BaseException:
            if self.in_atomic_block:
                self.needs_rollback = True
            raise

    def _traced(self, templates: list[str]):
        """The client span the psycopg instrumentation gives every statement it sees, for the
        string it does not see (sent through a bare cursor). Its statement text is the writes'
        templates, placeholders and all, as the instrumentation records: no customer data, and a
        failure is recorded by its class and SQLSTATE only (PostgreSQL's message quotes the
        statement's text and the failing row, values included)."""
        if not tracing.enabled():
            return contextlib.nullcontext()
        attributes = {"db.system": "postgresql", "db.name": self.settings_dict["NAME"]}
        attributes["db.statement"] = "; ".join(templates)
        name = f"{len(templates)} deferred statements"
        return tracing.span(name, kind=SpanKind.CLIENT, error_messages=False, **attributes)

    def _nothing_sent_yet(self) -> bool:
        """No BEGIN sent yet, and psycopg's own would carry nothing (isolation level, read-only or
        deferrable mode), so ours can go in the string."""
        conn = self.connection
        return (
            conn.info.transaction_status == pq.TransactionStatus.IDLE
            and conn.isolation_level is None
            and conn.read_only is None
            and conn.deferrable is None
        )

    def _send_with_begin(self, statements: list[str]) -> None:
        conn = self.connection
        conn.autocommit = True
        try:
            self._binder().execute("; ".join(["BEGIN", *statements]))
        except BaseException:
            if conn.info.transaction_status == pq.TransactionStatus.INERROR:
                with contextlib.suppress(psycopg.Error):  # else Django's rollback or close repairs it
                    conn.execute("ROLLBACK")
            raise
        finally:
            if conn.info.transaction_status == pq.TransactionStatus.IDLE:
                conn.autocommit = False

    def _commit(self):
        durability.note_commit(self.alias)  # before: a COMMIT whose answer is lost has an unknown outcome
        if self._deferred_writes and self.connection is not None:
            with debug_transaction(self, "COMMIT"), self.wrap_database_errors:
                self._send_deferred(commit=True)
            return None
        return super()._commit()

    def _rollback(self):
        self._deferred_writes = []
        return super()._rollback()

    def _close(self):
        self._deferred_writes, self._binding_cursor = [], None
        return super()._close()

    @property
    def pool(self):
        pool = super().pool
        if pool is not None and pool._check is not check_pooled_connection:
            pool._check = check_pooled_connection
        return pool
