"""Thin HTTP layer of the catalog: parse, call a selector/service/facade, shape the output."""

import hashlib
from urllib.parse import urlencode

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticatedOrReadOnly
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
from shop.api.inputs import PagedQuery, query_read
from shop.api.pagination import PagePagination, page_get, page_response
from shop.api.permissions import staff_permission
from shop.security import staff


def is_staff(request) -> bool:
    user = request.user
    return bool(user and user.is_authenticated and user.is_staff)


def visible_product(request, product_id) -> facade.ProductDetail:
    """The cached product; inactive ones exist only for staff."""
    product = facade.product_detail_get(product_id=product_id)
    if product is None or (not product.is_active and not is_staff(request)):
        raise ProductNotFound(str(product_id))
    return product


class ProductCollectionApi(APIView):
    permission_classes = [staff_permission(staff.EDIT_CATALOG, public_read=True)]
    pagination_class = PagePagination  # documents the list response

    @extend_schema(operation_id="products_list", parameters=[ProductListQuery], responses=ProductOutput(many=True))
    def get(self, request, version):
        query = query_read(request, ProductListQuery)
        if not query["active"] and not is_staff(request):
            raise PermissionDenied("Only staff can list inactive products.")
        filters = selectors.ProductFilters(
            category=query.get("category"),
            min_price=query.get("minPrice"),
            max_price=query.get("maxPrice"),
            search=query.get("search"),
            active=query["active"],
            sort_by=query["sortBy"],
            order=query["order"],
        )

        def build() -> tuple[dict, list]:
            page = page_get(selectors.product_list(filters=filters), query)
            return page.block(), ProductOutput(page.items, many=True).data

        if is_staff(request):  # staff see their own writes at once, and stay out of the public cache
            return page_response(*build())
        canonical = urlencode(sorted((key, str(value)) for key, value in query.items() if value is not None))
        return page_response(*caching.product_page(hashlib.sha256(canonical.encode()).hexdigest()[:40], build))

    @extend_schema(
        operation_id="products_create",
        request=ProductCreateInput,
        responses={201: ProductOutput, 409: OpenApiResponse(description="SKU_TAKEN")},
    )
    def post(self, request, version):
        query_read(request)
        data = ProductCreateInput.read(request.data)
        product = services.product_create(**data)
        headers = {"Location": f"/api/{version}/products/{product.id}"}
        return ok(ProductOutput(product).data, message="Product created.", status=201, headers=headers)


class ProductItemApi(APIView):
    permission_classes = [staff_permission(staff.EDIT_CATALOG, public_read=True)]

    @extend_schema(operation_id="products_retrieve", responses=ProductOutput)
    def get(self, request, version, product_id):
        query_read(request)
        return ok(ProductOutput(visible_product(request, product_id)).data)

    @extend_schema(
        operation_id="products_update",
        request=ProductUpdateInput,
        responses={200: ProductOutput, 409: OpenApiResponse(description="SKU_TAKEN")},
    )
    def patch(self, request, version, product_id):
        query_read(request)
        data = ProductUpdateInput.read(request.data)
        product = services.product_update(product_id=product_id, data=data)
        return ok(ProductOutput(product).data, message="Product updated.")

    # A soft delete answers 200 with the deactivated product (a bare serializer would read as 204).
    @extend_schema(operation_id="products_deactivate", request=None, responses={200: ProductOutput})
    def delete(self, request, version, product_id):
        query_read(request)
        product = services.product_deactivate(product_id=product_id)
        return ok(ProductOutput(product).data, message="Product deactivated.")


class CategoryListApi(APIView):
    @extend_schema(operation_id="categories_list", responses=CategoryOutput(many=True))
    def get(self, request, version):
        query_read(request)
        return ok(CategoryOutput(selectors.category_list(), many=True).data)


class ProductReviewsApi(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]
    pagination_class = PagePagination

    @extend_schema(operation_id="product_reviews_list", parameters=[PagedQuery], responses=ReviewOutput(many=True))
    def get(self, request, version, product_id):
        query = query_read(request, PagedQuery)
        visible_product(request, product_id)
        page = page_get(selectors.review_list(product_id=product_id), query)
        return page_response(page.block(), ReviewOutput(page.items, many=True).data)

    @extend_schema(
        operation_id="product_reviews_create",
        request=ReviewCreateInput,
        responses={201: ReviewOutput, 409: OpenApiResponse(description="REVIEW_EXISTS")},
    )
    def post(self, request, version, product_id):
        query_read(request)
        data = ReviewCreateInput.read(request.data)
        review = services.review_create(product_id=product_id, user_id=request.user.pk, **data)
        return ok(ReviewOutput(review).data, message="Review added.", status=201)
