"""Thin HTTP layer of the orders context (v1 and v2 share views; the representation differs).

Another customer's order is always 404, never 403: a 403 would confirm that the id exists.
"""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from apps.accounts import facade as accounts
from apps.orders import eventstore, selectors, services
from apps.orders.errors import OrderNotFound
from apps.orders.models import IdempotencyRecord, Order
from apps.orders.serializers import (
    OrderCreateInput,
    OrderDetailV1,
    OrderDetailV2,
    OrderEventOutput,
    OrderListParams,
    OrderReplayParams,
    OrderShipInput,
    OrderSnapshotOutput,
    OrderV1,
    OrderV2,
)
from shop.api.envelope import ok
from shop.api.errors import ApiError
from shop.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from shop.api.idempotency import KEY_SCHEMA as IDEMPOTENCY_KEY_SCHEMA
from shop.api.idempotency import run_idempotent
from shop.api.inputs import PagedQuery, query_read
from shop.api.pagination import PagePagination, page_get, page_response
from shop.api.permissions import staff_permission
from shop.security import staff
from shop.security.audit import staff_action_record

_TAGS = ["orders"]
_IDEMPOTENCY_PARAM = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    type=IDEMPOTENCY_KEY_SCHEMA,
    location=OpenApiParameter.HEADER,
    required=False,
    description="Retry-safe key (IETF draft): a retry with the same key and body replays the first response "
    "(header Idempotent-Replayed: true); another body → 422 IDEMPOTENCY_KEY_REUSED; still running → 409 "
    "IDEMPOTENCY_KEY_IN_USE. Keys are per user and kept for at least 24 hours.",
)


def _is_v2(request) -> bool:
    return request.version == "v2"


def _customers(orders: list[Order]) -> dict:
    """One accounts look-up for a whole page of orders (no N+1 across contexts)."""
    return accounts.user_profiles_get(user_ids={order.user_id for order in orders}) if orders else {}


def order_representation(request, order: Order, *, detail: bool = True) -> dict:
    if _is_v2(request):
        serializer = OrderDetailV2 if detail else OrderV2
        return serializer.represent(order, context={"customers": _customers([order])})
    return (OrderDetailV1 if detail else OrderV1).represent(order)


def _sees_every_order(request) -> bool:
    """Other customers' orders are customer data: staff need ``view_customers`` to see them."""
    return staff.staff_can(request.user, staff.VIEW_CUSTOMERS)


def _visible_order(request, order_id, *, with_history: bool = True, any_owner: bool = False) -> Order:
    owner = None if any_owner or _sees_every_order(request) else request.user.pk
    order = selectors.order_get(order_id=order_id, user_id=owner, with_history=with_history)
    if order is None:
        raise OrderNotFound(str(order_id))
    return order


_STATE_CONFLICT = {409: OpenApiResponse(description="INVALID_STATE, CONCURRENT_MODIFICATION")}


def _one_order_schema(*, operation_id: str, status_code: int = 200, errors: dict | None = None, **kwargs):
    """v1 and v2 document their own representation of the same operation (and its own errors)."""
    errors = errors or {}

    def decorate(method):
        method = extend_schema(operation_id=operation_id, tags=_TAGS, **kwargs)(method)
        method = extend_schema(versions=["v2"], responses={status_code: OrderDetailV2, **errors})(method)
        return extend_schema(versions=["v1"], responses={status_code: OrderDetailV1, **errors})(method)

    return decorate


class OrderCollectionView(APIView):
    permission_classes = [IsAuthenticated]
    pagination_class = PagePagination  # also tells the schema the list is paginated
    ratelimit_scope = "orders"

    @extend_schema(versions=["v1"], responses={200: OrderV1(many=True)})
    @extend_schema(versions=["v2"], responses={200: OrderV2(many=True)})
    @extend_schema(operation_id="orders_list", tags=_TAGS, parameters=[OrderListParams])
    def get(self, request, version=None):
        """Your orders (staff: everyone's), newest first unless ``sortBy``/``order`` say otherwise."""
        query = query_read(request, OrderListParams)
        sees_all = _sees_every_order(request)
        for staff_only in ("userId", "email"):
            if query.get(staff_only) and not sees_all:
                raise ApiError(f"{staff_only} is a staff-only filter.", code="VALIDATION_ERROR")
        owner = query.get("userId") if sees_all else request.user.pk
        orders = selectors.orders_list(
            user_id=owner,
            status=query.get("status"),
            created_from=query.get("createdFrom"),
            created_to=query.get("createdTo"),
            customer_email=query.get("email"),
            sort_by=query["sortBy"],
            descending=query["order"] == "desc",
        )
        page = page_get(orders, query)
        if _is_v2(request):
            data = OrderV2.represent(page.items, many=True, context={"customers": _customers(page.items)})
        else:
            data = OrderV1.represent(page.items, many=True)
        return page_response(page.block(), data)

    @_one_order_schema(
        operation_id="orders_create",
        status_code=201,
        request=OrderCreateInput,
        parameters=[_IDEMPOTENCY_PARAM],
        errors={
            409: OpenApiResponse(description="INSUFFICIENT_STOCK, IDEMPOTENCY_KEY_IN_USE (see Retry-After)"),
            422: OpenApiResponse(description="IDEMPOTENCY_KEY_REUSED"),
            503: OpenApiResponse(
                description="CHECKOUT_BUSY (see Retry-After): more work waits for the workers "
                "than admission control lets in; retry the same request"
            ),
        },
    )
    def post(self, request, version=None):
        """Place an order (PENDING); the checkout confirms or cancels it. ``processing`` is true meanwhile."""
        query_read(request)
        return run_idempotent(request, lambda: self._create(request), model=IdempotencyRecord, using="orders")

    def _create(self, request):
        body = OrderCreateInput.read(request.data)
        order = services.order_place(
            user_id=request.user.pk,
            customer_email=getattr(request.user, "email", ""),
            items=[services.ItemRequest(i["product_id"], i["quantity"]) for i in body["items"]],
            shipping_address=services.Address(**body["shipping_address"]),
            shipping_method=body["shipping_method"],
            notes=body["notes"],
            payment_method=body["payment"]["method"],
            payment_token=body["payment"]["token"],
        )
        return ok(order_representation(request, order), message="Order created successfully", status=201)


class OrderDetailView(APIView):
    permission_classes = [IsAuthenticated]

    @_one_order_schema(operation_id="orders_retrieve")
    def get(self, request, order_id, version=None):
        """One order with items and status history; ``processing`` is true while the checkout runs."""
        query_read(request)
        return ok(order_representation(request, _visible_order(request, order_id)))


class _OrderCommandView(APIView):
    """POST a command to one order; subclasses name the service call."""

    permission_classes = [IsAuthenticated]
    ratelimit_scope = "orders"
    input_serializer = None
    # Staff commands (a staff permission class) reach any customer's order.
    staff_command = False

    def command(self, request, order: Order, body: dict) -> None:
        raise NotImplementedError

    def post(self, request, order_id, version=None):
        query_read(request)
        order = _visible_order(request, order_id, with_history=False, any_owner=self.staff_command)
        body = {}
        if self.input_serializer is not None:
            body = self.input_serializer.read(request.data)
        self.command(request, order, body)
        # Read back as it was found: a staff command's order is usually another customer's.
        return ok(order_representation(request, _visible_order(request, order_id, any_owner=self.staff_command)))


class OrderCancelView(_OrderCommandView):
    @_one_order_schema(operation_id="orders_cancel", request=None, errors=_STATE_CONFLICT)
    def post(self, request, order_id, version=None):
        """Cancel a PENDING or CONFIRMED order (else 409 INVALID_STATE); stock and payment are then released."""
        return super().post(request, order_id, version)

    def command(self, request, order, body):
        own = order.user_id == request.user.pk
        if not own and not staff.staff_can(request.user, staff.OPERATE_CHECKOUTS):
            # Cancelling someone else's order refunds money and returns stock: a staff action.
            raise PermissionDenied("Your staff role does not allow cancelling customers' orders.")
        reason = services.CUSTOMER_REQUEST if own else services.STAFF_REQUEST
        services.order_cancel_request(order_id=order.id, reason=reason)
        if not own:
            staff_action_record(
                user=request.user, obj=order, action="Cancel for the customer", outcome="Cancelled.", reason=reason
            )


class OrderShipView(_OrderCommandView):
    permission_classes = [staff_permission(staff.SHIP_ORDER)]
    staff_command = True
    input_serializer = OrderShipInput

    @_one_order_schema(operation_id="orders_ship", request=OrderShipInput, errors=_STATE_CONFLICT)
    def post(self, request, order_id, version=None):
        """Staff: a CONFIRMED order leaves the warehouse with a tracking number."""
        return super().post(request, order_id, version)

    def command(self, request, order, body):
        tracking = body["tracking_number"]
        services.order_ship(order_id=order.id, tracking_number=tracking)
        staff_action_record(user=request.user, obj=order, action="Ship", outcome=f"Tracking {tracking}.", reason="")


class OrderDeliverView(_OrderCommandView):
    permission_classes = [staff_permission(staff.SHIP_ORDER)]
    staff_command = True

    @_one_order_schema(operation_id="orders_deliver", request=None, errors=_STATE_CONFLICT)
    def post(self, request, order_id, version=None):
        """Staff: a SHIPPED order arrived."""
        return super().post(request, order_id, version)

    def command(self, request, order, body):
        services.order_deliver(order_id=order.id)
        staff_action_record(user=request.user, obj=order, action="Deliver", outcome="Delivered.", reason="")


# --- event store (staff) -----------------------------------------------------------------------


def _known_order(order_id) -> None:
    """404 unless the order exists (as a row or, should the row ever go, as history)."""
    if not selectors.order_exists(order_id=order_id) and not eventstore.order_has_events(order_id=order_id):
        raise OrderNotFound(str(order_id))


class OrderEventsView(APIView):
    permission_classes = [staff_permission(staff.VIEW_CUSTOMERS)]
    pagination_class = PagePagination

    @extend_schema(
        operation_id="orders_events_list",
        tags=_TAGS,
        parameters=[PagedQuery],
        responses={200: OrderEventOutput(many=True)},
    )
    def get(self, request, order_id, version=None):
        """Staff: the order's stored events, oldest first, as written (the audit trail; kept forever)."""
        query = query_read(request, PagedQuery)
        _known_order(order_id)
        page = page_get(eventstore.order_events(order_id=order_id), query)
        return page_response(page.block(), OrderEventOutput(page.items, many=True).data)


class OrderReplayView(APIView):
    permission_classes = [staff_permission(staff.VIEW_CUSTOMERS)]

    @extend_schema(
        operation_id="orders_replay",
        tags=_TAGS,
        parameters=[OrderReplayParams],
        responses={200: OrderSnapshotOutput},
    )
    def get(self, request, order_id, version=None):
        """Staff: the order rebuilt from its events alone, as it was at ``at`` (default: now).

        404 ``ORDER_NOT_FOUND`` for an unknown order, 404 ``NO_EVENTS_AT`` when the order had
        no events yet at ``at``.
        """
        at = query_read(request, OrderReplayParams).get("at")
        _known_order(order_id)
        snapshot = eventstore.order_replay(order_id=order_id, until=at)
        return ok(OrderSnapshotOutput(snapshot).data)
