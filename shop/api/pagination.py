"""Page-number pagination exactly as the spec: ``?page=&limit=`` and a ``pagination`` block.

Unlike DRF's default, bad values are errors (400), not silently replaced, and a page past
the end is an empty page rather than a 404: clients can tell "no more" from "broken".
"""

import math

from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

MAX_LIMIT = 100


class PageParams(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, default=1)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=10)


class PagePagination(BasePagination):
    default_limit = 10

    def paginate_queryset(self, queryset, request, view=None):
        params = PageParams(data={k: v for k, v in request.query_params.items() if k in ("page", "limit")})
        params.is_valid(raise_exception=True)
        self.page = params.validated_data["page"]
        self.limit = params.validated_data["limit"]
        self.total = queryset.count()
        offset = (self.page - 1) * self.limit
        items = list(queryset[offset : offset + self.limit]) if offset < self.total else []
        self.returned = len(items)
        return items

    def pagination_block(self) -> dict:
        return {
            "page": self.page,
            "limit": self.limit,
            "total": self.total,
            "pages": math.ceil(self.total / self.limit) if self.total else 0,
            "has_next": (self.page - 1) * self.limit + self.returned < self.total,
            "has_prev": self.page > 1,
        }

    def get_paginated_response(self, data):
        block = self.pagination_block()
        headers = {"X-Total-Count": str(block["total"]), "X-Page-Count": str(block["pages"])}
        return Response({"success": True, "data": data, "pagination": block}, headers=headers)

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
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 10},
            },
        ]
