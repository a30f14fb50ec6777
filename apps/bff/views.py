"""Thin HTTP layer of the BFF."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from apps.bff import services
from apps.bff.errors import ProductPageNotFound
from apps.bff.serializers import ProductPageOutput
from shop.api.envelope import ok
from shop.api.inputs import query_read


class ProductPageApi(APIView):
    @extend_schema(
        operation_id="bff_product_complete",
        responses={200: ProductPageOutput, 503: OpenApiResponse(description="CATALOG_UNAVAILABLE")},
    )
    def get(self, request, version, product_id):
        query_read(request)
        page = services.product_page_get(product_id=product_id)
        if page is None:
            raise ProductPageNotFound(str(product_id))
        # A degraded page must not be replayed from the response cache once the part is back.
        headers = {"Cache-Control": "no-store"} if page.degraded else None
        return ok(ProductPageOutput(page).data, headers=headers)
