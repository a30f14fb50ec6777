"""Query-count assertions across every context database (pytest-django's helper watches one)."""

from contextlib import ExitStack, contextmanager

from django.conf import settings
from django.db import connections
from django.test.utils import CaptureQueriesContext


@contextmanager
def count_queries(*aliases: str):
    """Yields a dict alias → CaptureQueriesContext; read ``.captured_queries`` after the block."""
    aliases = aliases or tuple(settings.CONTEXTS)
    with ExitStack() as stack:
        yield {alias: stack.enter_context(CaptureQueriesContext(connections[alias])) for alias in aliases}


@contextmanager
def assert_max_queries(expected: int, *aliases: str, exact: bool = True):
    with count_queries(*aliases) as captured:
        yield captured
    total = sum(len(ctx.captured_queries) for ctx in captured.values())
    detail = "\n".join(f"[{a}] {q['sql']}" for a, ctx in captured.items() for q in ctx.captured_queries)
    if exact:
        assert total == expected, f"expected {expected} queries, ran {total}:\n{detail}"
    else:
        assert total <= expected, f"expected at most {expected} queries, ran {total}:\n{detail}"
