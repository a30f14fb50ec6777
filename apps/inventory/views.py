"""Thin HTTP layer of the inventory context."""

from functools import partial

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.views import APIView

from apps.catalog import facade as catalog
from apps.inventory import selectors, services
from apps.inventory.errors import StockItemNotFound
from apps.inventory.models import IdempotencyKey
from apps.inventory.serializers import AdjustmentInput, AvailabilityOutput, StockLevelOutput
from shop.api.envelope import ok
from shop.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from shop.api.idempotency import KEY_SCHEMA as IDEMPOTENCY_KEY_SCHEMA
from shop.api.idempotency import run_idempotent
from shop.api.inputs import query_read
from shop.api.permissions import staff_permission
from shop.security import staff
from shop.security.audit import staff_action_record


def _levels(item) -> dict:
    return {
        "product_id": item.product_id,
        "available": item.available,
        "in_stock": item.available > 0,
        "on_hand": item.on_hand,
        "reserved": item.reserved,
    }


class AvailabilityApi(APIView):
    @extend_schema(operation_id="inventory_availability", responses=AvailabilityOutput)
    def get(self, request, version, product_id):
        """Stock of a product the caller may see: a deactivated product is 404 here as in the catalog."""
        query_read(request)
        product = catalog.product_detail_get(product_id=product_id)
        if product is None or (not product.is_active and not request.user.is_staff):
            raise StockItemNotFound(str(product_id))
        item = selectors.stock_get(product_id=product_id)
        if item is None:
            raise StockItemNotFound(str(product_id))
        return ok(AvailabilityOutput(_levels(item)).data)


class AdjustmentCreateApi(APIView):
    permission_classes = [staff_permission(staff.ADJUST_STOCK)]

    @extend_schema(
        operation_id="inventory_adjust",
        request=AdjustmentInput,
        responses={
            201: StockLevelOutput,
            409: OpenApiResponse(description="STOCK_BELOW_RESERVED, IDEMPOTENCY_KEY_IN_USE"),
            422: OpenApiResponse(description="IDEMPOTENCY_KEY_REUSED"),
        },
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                type=IDEMPOTENCY_KEY_SCHEMA,
                location=OpenApiParameter.HEADER,
                required=False,
                description="A retry with the same key and body replays the first response and adjusts once "
                "(header Idempotent-Replayed: true); another body → 422 IDEMPOTENCY_KEY_REUSED.",
            )
        ],
    )
    def post(self, request, version, product_id):
        """Staff: change the units on hand by ``delta``, with a reason, written to the stock ledger."""
        query_read(request)
        adjust = partial(self._adjust, request, product_id)
        return run_idempotent(request, adjust, model=IdempotencyKey, using="inventory")

    def _adjust(self, request, product_id):
        body = AdjustmentInput.read(request.data)
        item = services.stock_adjust(product_id=product_id, actor=str(request.user.pk), **body)
        staff_action_record(
            user=request.user,
            obj=item,
            action="Adjust stock",
            outcome=f"{body['delta']:+d} units.",
            reason=body["reason"],
        )
        return ok(StockLevelOutput(_levels(item)).data, message="Stock adjusted.", status=201)
