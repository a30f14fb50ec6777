"""Page-number pagination exactly as the spec: ``?page=&limit=`` and a ``pagination`` block.

Unlike DRF's default, bad values are errors (400), not silently replaced, and a page past
the end is an empty page rather than a 404: clients can tell "no more" from "broken".
Views validate the query with ``shop.api.inputs`` (``PagedQuery``), cut the page with
``page_get`` and answer with ``page_response``; ``PagePagination`` is the same thing in
DRF's pagination interface (generic views, and the OpenAPI description of list responses).
"""

import math
from dataclasses import dataclass

from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from shop.api.inputs import DEFAULT_LIMIT, MAX_LIMIT, PagedQuery


@dataclass(frozen=True)
class Page:
    items: list
    page: int
    limit: int
    total: int

    def block(self) -> dict:
        return {
            "page": self.page,
            "limit": self.limit,
            "total": self.total,
            "pages": math.ceil(self.total / self.limit) if self.total else 0,
            "has_next": (self.page - 1) * self.limit + len(self.items) < self.total,
            "has_prev": self.page > 1,
        }


def page_get(queryset, *, page: int = 1, limit: int = DEFAULT_LIMIT) -> Page:
    """One page of ``queryset`` (ordered by its selector) and the collection's size."""
    total = queryset.count()
    offset = (page - 1) * limit
    items = list(queryset[offset : offset + limit]) if offset < total else []
    return Page(items=items, page=page, limit=limit, total=total)


def page_response(block: dict, data) -> Response:
    """The list envelope: ``{success, data, pagination}`` plus ``X-Total-Count``/``X-Page-Count``.

    Takes ``Page.block()`` rather than the page so that a cached list stores plain data only.
    """
    headers = {"X-Total-Count": str(block["total"]), "X-Page-Count": str(block["pages"])}
    return Response({"success": True, "data": data, "pagination": block}, headers=headers)


class PagePagination(BasePagination):
    """``page_get``/``page_response`` behind DRF's interface; documents every list response."""

    def paginate_queryset(self, queryset, request, view=None):
        params = PagedQuery(data={k: v for k, v in request.query_params.items() if k in ("page", "limit")})
        params.is_valid(raise_exception=True)
        self.page = page_get(queryset, **params.validated_data)
        return self.page.items

    def get_paginated_response(self, data):
        return page_response(self.page.block(), data)

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["success", "data", "pagination"],
            "properties": {
                "success": {"type": "boolean", "enum": [True]},
                "data": schema,
                "pagination": {
                    "type": "object",
                    "required": ["page", "limit", "total", "pages", "hasNext", "hasPrev"],
                    "properties": {
                        "page": {"type": "integer", "minimum": 1},
                        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                        "total": {"type": "integer"},
                        "pages": {"type": "integer"},
                        "hasNext": {"type": "boolean"},
                        "hasPrev": {"type": "boolean"},
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
        ]
