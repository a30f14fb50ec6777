"""Counting rows without reading a million of them.

``COUNT(*)`` reads every matching row (PostgreSQL keeps no row count), so a list page whose
envelope says ``total`` costs more as the table grows, whatever the page size. Here a count
stops after ``limit`` rows: exact for small collections, and beyond that an honest lower
bound ("more than 10,000") that costs the same at ten thousand rows as at ten million.
The API envelope (``shop.api.pagination``) and the admin changelists (``shop.admin``) both
count through ``count_bounded``.
"""

from dataclasses import dataclass

from django.conf import settings


def count_limit() -> int:
    return settings.PAGINATION_COUNT_LIMIT


@dataclass(frozen=True)
class Count:
    value: int  # exact when ``exact``, else the limit: "at least this many"
    exact: bool


def count_bounded(queryset, limit: int | None = None) -> Count:
    """``SELECT count(*) FROM (SELECT pk ... ORDER BY <the list's order> LIMIT limit + 1)``: reads at
    most ``limit + 1`` rows, along the same index as the page itself (the ordering is kept on
    purpose: without it the planner may pick a sequential scan of the whole table)."""
    limit = count_limit() if limit is None else limit
    seen = queryset.values("pk")[: limit + 1].count()
    return Count(value=seen, exact=True) if seen <= limit else Count(value=limit, exact=False)
