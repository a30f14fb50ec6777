"""Thin HTTP layer of the BFF."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from apps.bff import services
from apps.bff.serializers import ProductPageOutput
from shop.api.envelope import ok
from shop.api.errors import NotFoundError, ServiceUnavailable


class ProductPageApi(APIView):
    @extend_schema(
        operation_id="bff_product_complete",
        responses={200: ProductPageOutput, 503: OpenApiResponse(description="CATALOG_UNAVAILABLE")},
    )
    def get(self, request, version, product_id):
        try:
            page = services.product_page_get(product_id=product_id)
        except services.CatalogUnavailable:
            raise ServiceUnavailable("The catalog is temporarily unavailable.", code="CATALOG_UNAVAILABLE")
        if page is None:
            raise NotFoundError("Product not found.", code="PRODUCT_NOT_FOUND")
        return ok(ProductPageOutput(page).data)
