"""What the current request has made durable, so that it can be re-run when it made nothing.

A request whose database session dies under it (``pg_terminate_backend``, a failover, a
restart) fails with ``OperationalError``. Running it again on a fresh session is exactly what
the client's own retry would do, and it is safe whenever the failed attempt left nothing behind:
no transaction commit was *attempted* on any database (a COMMIT that failed has an unknown
outcome) and no write statement ran in autocommit mode (outside ``atomic``, where it commits on
its own). ``shop.api.middleware.DatabaseRetryMiddleware`` re-runs such a request once.

Who records: our PostgreSQL engine (``shop.postgresql``) calls ``note()`` before every commit
and before every non-SELECT statement run in autocommit mode. The record is per request (a
context variable the middleware sets around each attempt); outside a request nothing records.
A keyed request's ``Idempotency-Key`` claim is written in the work's own transaction
(``shop.api.idempotency.run_idempotent``), so a failed attempt left no claim behind. That
transaction's COMMIT is also the one commit a re-run may follow even when its answer was lost
(the fault campaign saw an order POST's session die *during* its COMMIT): whichever way it went,
the re-run either finds the key COMPLETED and replays the stored response, or finds no key and
does the work for the first time. ``replayable(alias)`` marks such a commit; any other durable
step of the same attempt still stops the re-run.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import psycopg
from django.db import OperationalError, connections
from psycopg_pool import PoolTimeout


class Attempt:
    """One run of a request: did it do anything a re-run could repeat?"""

    __slots__ = ("durable", "replayable")

    def __init__(self) -> None:
        self.durable = False
        self.replayable: set[str] = set()  # aliases whose next COMMIT a re-run may safely follow


_attempt: ContextVar[Attempt | None] = ContextVar("shop_request_attempt", default=None)


def note() -> None:
    """Something durable may have happened (a commit was attempted, or an autocommit write ran)."""
    attempt = _attempt.get()
    if attempt is not None:
        attempt.durable = True


def note_commit(alias: str) -> None:
    """A COMMIT is being attempted on ``alias``: durable, unless ``replayable(alias)`` covers it."""
    attempt = _attempt.get()
    if attempt is not None and alias not in attempt.replayable:
        attempt.durable = True


@contextmanager
def replayable(alias: str) -> Iterator[None]:
    """Around a transaction on ``alias`` whose outcome a re-run of the request discovers by itself
    (an Idempotency-Key claimed in it): its COMMIT does not stop the re-run."""
    attempt = _attempt.get()
    if attempt is None or alias in attempt.replayable:
        yield
        return
    attempt.replayable.add(alias)
    try:
        yield
    finally:
        attempt.replayable.discard(alias)


def recording() -> bool:
    """Whether a request attempt is being recorded in this context (cheap: the hot-path check)."""
    return _attempt.get() is not None


@contextmanager
def attempt() -> Iterator[Attempt]:
    """Record one attempt of a request; the yielded ``Attempt`` says afterwards what it did."""
    current = Attempt()
    token = _attempt.set(current)
    try:
        yield current
    finally:
        _attempt.reset(token)


def cured_by_a_fresh_session(exc: OperationalError) -> bool:
    """Could running the work again on a fresh session cure this ``OperationalError``?

    A lost session (terminated, restarted, failed over) or a refused connection: yes. Not a
    statement timeout or a cancelled query (SQLSTATE 57014, ``QueryCanceled``), nor a pool that
    had no connection to hand out in time (``PoolTimeout``): those mean the database is slow or
    saturated, and a re-run would double the load that caused them."""
    return not isinstance(exc.__cause__, psycopg.errors.QueryCanceled | PoolTimeout)


def write_once_more_if_session_lost(alias: str, write: Callable[[], object]) -> None:
    """Run ``write`` (one autocommit write on ``alias``) again, on a fresh session, if its session
    was lost.

    For the last write of a request that has already committed elsewhere, so that a re-run of the
    whole request is no longer safe: the staff audit record after a ship (the fault campaign saw
    the accounts session terminated between the two, and the order shipped with no record of who
    shipped it). A write whose answer was lost may have landed; writing it again may then record
    it twice, which for an append-only record beats not recording it at all."""
    try:
        write()
    except OperationalError as exc:
        connection = connections[alias]
        if connection.in_atomic_block or not cured_by_a_fresh_session(exc):
            raise
        connection.close_if_unusable_or_obsolete()  # a dead session goes; the write opens a fresh one
        write()
