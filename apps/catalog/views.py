"""Thin HTTP layer of the catalog: parse, call a selector/service/facade, shape the output."""

import hashlib
from urllib.parse import urlencode

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.catalog import caching, facade, selectors, services
from apps.catalog.errors import ProductNotFound
from apps.catalog.serializers import (
    CategoryOutput,
    ProductCreateInput,
    ProductListQuery,
    ProductOutput,
    ProductUpdateInput,
    ReviewCreateInput,
    ReviewOutput,
)
from shop.api.envelope import ok
from shop.api.pagination import PagePagination, PageParams
from shop.api.permissions import staff_permission
from shop.security import staff

PAGING = ("page", "limit")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def read_query(request, serializer_class=None) -> dict:
    """Validate query parameters against an allow-list of the spec's camelCase names: unknown
    names (including snake_case spellings) are a 400, never silently ignored."""
    fields = set(PAGING) | set(serializer_class().fields if serializer_class else ())
    names = {_camel(field): field for field in fields}
    unknown = sorted(key for key in request.query_params if key not in names)
    if unknown:
        raise serializers.ValidationError({key: ["Unknown query parameter."] for key in unknown})
    raw = {names[key]: value for key, value in request.query_params.items()}
    paging = PageParams(data={key: raw[key] for key in PAGING if key in raw})
    paging.is_valid(raise_exception=True)
    if serializer_class is None:
        return dict(paging.validated_data)
    query = serializer_class(data={key: value for key, value in raw.items() if key not in PAGING})
    query.is_valid(raise_exception=True)
    return {**query.validated_data, **paging.validated_data}


def is_staff(request) -> bool:
    user = request.user
    return bool(user and user.is_authenticated and user.is_staff)


def page_response(page: dict) -> Response:
    block = page["pagination"]
    headers = {"X-Total-Count": str(block["total"]), "X-Page-Count": str(block["pages"])}
    return Response({"success": True, "data": page["data"], "pagination": block}, headers=headers)


def paginate(request, view, queryset, output_class) -> dict:
    paginator = PagePagination()
    items = paginator.paginate_queryset(queryset, request, view=view)
    return {"data": output_class(items, many=True).data, "pagination": paginator.pagination_block()}


def visible_product(request, product_id) -> facade.ProductDetail:
    """The cached product; inactive ones exist only for staff."""
    product = facade.product_detail_get(product_id=product_id)
    if product is None or (not product.is_active and not is_staff(request)):
        raise ProductNotFound(str(product_id))
    return product


LIST_PARAMETERS = [
    OpenApiParameter("category", OpenApiTypes.STR, description="Category id or slug (subcategories included)"),
    OpenApiParameter("minPrice", OpenApiTypes.DECIMAL),
    OpenApiParameter("maxPrice", OpenApiTypes.DECIMAL),
    OpenApiParameter("search", OpenApiTypes.STR, description="Case-insensitive match in name, SKU or description"),
    OpenApiParameter("active", OpenApiTypes.BOOL, description="Default true; false is staff only"),
    OpenApiParameter("sortBy", OpenApiTypes.STR, enum=sorted(selectors.SORT_FIELDS), default="createdAt"),
    OpenApiParameter("order", OpenApiTypes.STR, enum=["asc", "desc"], default="desc"),
]


class ProductCollectionApi(APIView):
    permission_classes = [staff_permission(staff.EDIT_CATALOG, public_read=True)]
    pagination_class = PagePagination  # documents the list response; paging is done in ``paginate``

    @extend_schema(operation_id="products_list", parameters=LIST_PARAMETERS, responses=ProductOutput(many=True))
    def get(self, request, version):
        query = read_query(request, ProductListQuery)
        if not query["active"] and not is_staff(request):
            raise PermissionDenied("Only staff can list inactive products.")
        filters = selectors.ProductFilters(
            category=query.get("category"),
            min_price=query.get("min_price"),
            max_price=query.get("max_price"),
            search=query.get("search"),
            active=query["active"],
            sort_by=query["sort_by"],
            order=query["order"],
        )

        def build() -> dict:
            return paginate(request, self, selectors.product_list(filters=filters), ProductOutput)

        if is_staff(request):  # staff see their own writes at once, and stay out of the public cache
            return page_response(build())
        canonical = urlencode(sorted((key, str(value)) for key, value in query.items() if value is not None))
        return page_response(caching.product_page(hashlib.sha256(canonical.encode()).hexdigest()[:40], build))

    @extend_schema(
        operation_id="products_create",
        request=ProductCreateInput,
        responses={201: ProductOutput, 409: OpenApiResponse(description="SKU_TAKEN")},
    )
    def post(self, request, version):
        data = ProductCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        product = services.product_create(**data.validated_data)
        headers = {"Location": f"/api/{version}/products/{product.id}"}
        return ok(ProductOutput(product).data, message="Product created.", status=201, headers=headers)


class ProductItemApi(APIView):
    permission_classes = [staff_permission(staff.EDIT_CATALOG, public_read=True)]

    @extend_schema(operation_id="products_retrieve", responses=ProductOutput)
    def get(self, request, version, product_id):
        read_query(request)
        return ok(ProductOutput(visible_product(request, product_id)).data)

    @extend_schema(
        operation_id="products_update",
        request=ProductUpdateInput,
        responses={200: ProductOutput, 409: OpenApiResponse(description="SKU_TAKEN")},
    )
    def patch(self, request, version, product_id):
        data = ProductUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        product = services.product_update(product_id=product_id, data=data.validated_data)
        return ok(ProductOutput(product).data, message="Product updated.")

    # A soft delete answers 200 with the deactivated product (a bare serializer would read as 204).
    @extend_schema(operation_id="products_deactivate", request=None, responses={200: ProductOutput})
    def delete(self, request, version, product_id):
        product = services.product_deactivate(product_id=product_id)
        return ok(ProductOutput(product).data, message="Product deactivated.")


class CategoryListApi(APIView):
    @extend_schema(operation_id="categories_list", responses=CategoryOutput(many=True))
    def get(self, request, version):
        read_query(request)
        return ok(CategoryOutput(selectors.category_list(), many=True).data)


class ProductReviewsApi(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]
    pagination_class = PagePagination

    @extend_schema(operation_id="product_reviews_list", responses=ReviewOutput(many=True))
    def get(self, request, version, product_id):
        read_query(request)
        visible_product(request, product_id)
        return page_response(paginate(request, self, selectors.review_list(product_id=product_id), ReviewOutput))

    @extend_schema(
        operation_id="product_reviews_create",
        request=ReviewCreateInput,
        responses={201: ReviewOutput, 409: OpenApiResponse(description="REVIEW_EXISTS")},
    )
    def post(self, request, version, product_id):
        data = ReviewCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        review = services.review_create(product_id=product_id, user_id=request.user.pk, **data.validated_data)
        return ok(ReviewOutput(review).data, message="Review added.", status=201)
