"""Which database errors a request is re-run after, and where re-runs are switched off."""

import psycopg
import pytest
from django.core.exceptions import MiddlewareNotUsed
from django.db import OperationalError
from django.test import override_settings
from psycopg_pool import PoolTimeout

from shop.api.middleware import DatabaseRetryMiddleware
from shop.durability import cured_by_a_fresh_session


def _wrapped(cause: Exception) -> OperationalError:
    error = OperationalError(str(cause))
    error.__cause__ = cause  # as django.db.utils.DatabaseErrorWrapper raises it
    return error


def test_a_lost_session_or_a_refused_connection_is_retryable():
    assert cured_by_a_fresh_session(_wrapped(psycopg.errors.AdminShutdown("terminating connection")))
    assert cured_by_a_fresh_session(_wrapped(psycopg.OperationalError("connection refused")))


def test_a_statement_timeout_or_an_exhausted_pool_is_not_retryable():
    """The database is slow or saturated: a re-run would double the load."""
    assert not cured_by_a_fresh_session(_wrapped(psycopg.errors.QueryCanceled("canceling statement")))
    assert not cured_by_a_fresh_session(_wrapped(PoolTimeout("couldn't get a connection after 30 sec")))


def test_no_reruns_unless_every_database_records_what_it_committed():
    """SQLite (``make run``) records nothing: every request would look as if it committed nothing."""
    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": "x.sqlite3"}
    postgres = {"ENGINE": "shop.postgresql", "NAME": "x"}
    with override_settings(DATABASES={"default": {"ENGINE": "django.db.backends.dummy"}, "orders": postgres}):
        DatabaseRetryMiddleware(lambda request: None)
    with (
        override_settings(DATABASES={"orders": postgres, "catalog": sqlite}),
        pytest.raises(MiddlewareNotUsed),
    ):
        DatabaseRetryMiddleware(lambda request: None)
