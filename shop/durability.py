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
A keyed request's ``Idempotency-Key`` claim needs no exception: it is written in the work's own
transaction (``shop.api.idempotency.run_idempotent``), so a failed attempt left no claim behind.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class Attempt:
    """One run of a request: did it do anything a re-run could repeat?"""

    __slots__ = ("durable",)

    def __init__(self) -> None:
        self.durable = False


_attempt: ContextVar[Attempt | None] = ContextVar("shop_request_attempt", default=None)


def note() -> None:
    """Something durable may have happened (a commit was attempted, or an autocommit write ran)."""
    attempt = _attempt.get()
    if attempt is not None:
        attempt.durable = True


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
