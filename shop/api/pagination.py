"""List pagination: the spec's ``?page=&limit=``, plus keyset ``cursor`` paging for deep lists.

Unlike DRF's default, bad values are errors (400), not silently replaced, and a page past
the end is an empty page rather than a 404: clients can tell "no more" from "broken".
Views validate the query with ``shop.api.inputs`` (``PagedQuery``), cut the page with
``page_get`` and answer with ``page_response``; ``PagePagination`` documents the envelope.

Staying fast as tables grow (README, "Lists at scale"):

* ``total`` is counted by ``shop.counting.count_bounded``: exact up to
  ``PAGINATION_COUNT_LIMIT`` rows (10,000), beyond that the limit itself with
  ``totalExact: false`` ("at least"), so no page pays for a ``COUNT(*)`` over a million rows.
* ``OFFSET`` reads and throws away every skipped row, so page numbers reach only as deep as
  the count does (``PAGE_TOO_DEEP`` beyond it). Every page carries ``nextCursor``: a signed
  token naming the last row's sort key; ``?cursor=`` resumes right after it with an index
  range scan, as fast on the millionth row as on the first.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.core import signing
from django.db.models import Q
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from shop.api.errors import ApiError
from shop.api.inputs import DEFAULT_LIMIT, MAX_LIMIT, PagedQuery
from shop.counting import count_bounded, count_limit

_CURSOR_SALT = "shop.api.pagination.cursor"


@dataclass(frozen=True)
class Page:
    items: list
    page: int | None  # None when reached by cursor
    limit: int
    total: int
    total_exact: bool
    has_next: bool
    has_prev: bool
    next_cursor: str | None

    def block(self) -> dict:
        return {
            "page": self.page,
            "limit": self.limit,
            "total": self.total,
            "total_exact": self.total_exact,
            "pages": math.ceil(self.total / self.limit) if self.total else 0,
            "has_next": self.has_next,
            "has_prev": self.has_prev,
            "next_cursor": self.next_cursor,
        }


# --- keyset cursors ------------------------------------------------------------------------------


def _ordering(queryset) -> list[str] | None:
    """The queryset's ordering if it can be resumed by key (it must end with the primary key,
    so that every row has a distinct position); None: page numbers only (short lists)."""
    ordering = list(queryset.query.order_by)
    if not ordering or ordering[-1].lstrip("-") not in ("id", "pk"):
        return None
    return ordering


def _plain(value):
    return value if value is None or isinstance(value, bool | int | str) else str(value)


def _cursor_for(ordering: list[str], row) -> str:
    values = [_plain(getattr(row, name.lstrip("-"))) for name in ordering]
    return signing.dumps({"k": ordering, "v": values}, salt=_CURSOR_SALT, compress=True)


def _invalid_cursor() -> ApiError:
    return ApiError(
        "This cursor is invalid or belongs to another list or sort order; start again without it.",
        code="VALIDATION_ERROR",
        details={"cursor": ["Invalid cursor."]},
    )


def _after(ordering: list[str], cursor: str) -> Q:
    """Rows strictly after the cursor's row in ``ordering`` (lexicographic, per-column direction)."""
    try:
        payload = signing.loads(cursor, salt=_CURSOR_SALT)
    except signing.BadSignature:
        raise _invalid_cursor() from None
    if not isinstance(payload, dict) or payload.get("k") != ordering or len(payload.get("v") or ()) != len(ordering):
        raise _invalid_cursor()
    clauses, equal = [], {}
    for name, value in zip(ordering, payload["v"], strict=True):
        field, descending = name.lstrip("-"), name.startswith("-")
        clauses.append(Q(**equal, **{f"{field}__{'lt' if descending else 'gt'}": value}))
        equal[field] = value
    first, descending = ordering[0].lstrip("-"), ordering[0].startswith("-")
    # The redundant bound on the leading column turns the OR into an index range scan.
    return Q(**{f"{first}__{'lte' if descending else 'gte'}": payload["v"][0]}) & reduce(or_, clauses)


# --- pages ---------------------------------------------------------------------------------------


def page_get(queryset, params: Mapping) -> Page:
    """One page of ``queryset`` (ordered by its selector, ending with the id) for validated
    ``PagedQuery`` values: ``page``/``limit``, or ``cursor``/``limit``."""
    limit, cursor = params.get("limit", DEFAULT_LIMIT), params.get("cursor")
    page = None if cursor else params.get("page", 1)
    counted = count_bounded(queryset)
    ordering = _ordering(queryset)
    if cursor:
        if ordering is None:
            raise _invalid_cursor()
        rows = list(queryset.filter(_after(ordering, cursor))[: limit + 1])
    else:
        offset = (page - 1) * limit
        if offset >= count_limit() and offset > 0:
            raise ApiError(
                f"Page numbers reach the first {count_limit():,} rows; go further with cursor=<pagination.nextCursor>.",
                code="PAGE_TOO_DEEP",
                details={"page": [f"At most {math.ceil(count_limit() / limit)} with limit={limit}; use cursor."]},
            )
        rows = list(queryset[offset : offset + limit + 1]) if offset < counted.value or not counted.exact else []
    items, has_next = rows[:limit], len(rows) > limit
    return Page(
        items=items,
        page=page,
        limit=limit,
        total=counted.value,
        total_exact=counted.exact,
        has_next=has_next,
        has_prev=bool(cursor) or page > 1,
        next_cursor=_cursor_for(ordering, items[-1]) if has_next and ordering else None,
    )


def page_response(block: dict, data) -> Response:
    """The list envelope: ``{success, data, pagination}`` plus ``X-Total-Count``/``X-Page-Count``.

    Takes ``Page.block()`` rather than the page so that a cached list stores plain data only.
    """
    headers = {"X-Total-Count": str(block["total"]), "X-Page-Count": str(block["pages"])}
    if not block["total_exact"]:
        headers["X-Total-Count"] += "+"
    return Response({"success": True, "data": data, "pagination": block}, headers=headers)


class PagePagination(BasePagination):
    """``page_get``/``page_response`` behind DRF's interface; documents every list response."""

    def paginate_queryset(self, queryset, request, view=None):
        params = PagedQuery.read({k: v for k, v in request.query_params.items() if k in ("page", "limit", "cursor")})
        self.page = page_get(queryset, params)
        return self.page.items

    def get_paginated_response(self, data):
        return page_response(self.page.block(), data)

    def get_paginated_response_schema(self, schema):
        limit = count_limit()
        return {
            "type": "object",
            "required": ["success", "data", "pagination"],
            "properties": {
                "success": {"type": "boolean", "enum": [True]},
                "data": schema,
                "pagination": {
                    "type": "object",
                    "required": ["page", "limit", "total", "totalExact", "pages", "hasNext", "hasPrev", "nextCursor"],
                    "properties": {
                        "page": {
                            "type": "integer",
                            "minimum": 1,
                            "nullable": True,
                            "description": "null when the page was reached by cursor",
                        },
                        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                        "total": {
                            "type": "integer",
                            "minimum": 0,
                            "description": f"Exact up to {limit:,} rows; beyond that {limit:,} with totalExact "
                            "false, meaning 'at least' (the count stops there to stay cheap).",
                        },
                        "totalExact": {"type": "boolean"},
                        "pages": {"type": "integer", "minimum": 0, "description": "ceil(total / limit)"},
                        "hasNext": {"type": "boolean"},
                        "hasPrev": {"type": "boolean"},
                        "nextCursor": {
                            "type": "string",
                            "nullable": True,
                            "description": "Pass as ?cursor= for the next page (keyset paging, any depth); "
                            "null on the last page.",
                        },
                    },
                },
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {"name": "page", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}},
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            },
            {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
        ]
