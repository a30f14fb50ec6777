"""Thin HTTP layer of the payments context."""

import hashlib
from datetime import timedelta

import structlog
from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.views import APIView

from apps.orders import facade as orders
from apps.payments import selectors, services
from apps.payments.errors import ProviderUnavailable, RefundDeclined, WebhookRejected
from apps.payments.gateway.stripe_webhooks import InvalidWebhook, stripe_report
from apps.payments.models import IdempotencyLog
from apps.payments.serializers import PaymentOutput, RefundInput
from shop.api.envelope import ok
from shop.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from shop.api.idempotency import KEY_SCHEMA as IDEMPOTENCY_KEY_SCHEMA
from shop.api.idempotency import run_idempotent
from shop.api.inputs import query_read
from shop.api.permissions import staff_permission
from shop.security import staff
from shop.security.audit import staff_action_record

_TAGS = ["payments"]
logger = structlog.get_logger("apps.payments")


class OrderPaymentsView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="orders_payments_list", tags=_TAGS, responses={200: PaymentOutput(many=True)})
    def get(self, request, order_id, version=None):
        """The payments of one of your orders (staff with view_customers: any order); others are 404."""
        query_read(request)
        order = orders.order_summary_get(order_id=order_id)
        if order is None or (
            order.user_id != request.user.pk and not staff.staff_can(request.user, staff.VIEW_CUSTOMERS)
        ):
            raise orders.OrderNotFound(str(order_id))
        return ok(PaymentOutput.represent(selectors.payments_for_order(order_id=order_id), many=True))


class PaymentRefundView(APIView):
    permission_classes = [staff_permission(staff.REFUND_PAYMENT)]
    ratelimit_scope = "payments"

    @extend_schema(
        operation_id="payments_refund",
        tags=_TAGS,
        request=RefundInput,
        responses={
            200: PaymentOutput,
            409: OpenApiResponse(
                description="REFUND_EXCEEDS_CAPTURED, INVALID_STATE, REFUND_REJECTED, IDEMPOTENCY_KEY_IN_USE"
            ),
            422: OpenApiResponse(description="IDEMPOTENCY_KEY_REUSED"),
            503: OpenApiResponse(description="PAYMENT_PROVIDER_UNAVAILABLE"),
        },
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                type=IDEMPOTENCY_KEY_SCHEMA,
                location=OpenApiParameter.HEADER,
                required=True,
                description="Required: a retry with the same key replays the first response and never refunds twice.",
            )
        ],
    )
    def post(self, request, payment_id, version=None):
        """Staff: refund part or all of a captured payment (never more than captured: 409)."""
        query_read(request)
        # The key is remembered as long as the payments log keeps the refund made under it
        # (``PAYMENT_IDEMPOTENCY_TTL_HOURS``): forgotten here after the usual day, a reuse was taken
        # for a new refund, met the log's record of the first, and answered 200 with nothing refunded
        # (a staff action recorded all the same), or 400 for another amount.
        return run_idempotent(
            request,
            lambda: self._refund(request, payment_id),
            model=IdempotencyLog,
            using="payments",
            required=True,
            ttl=timedelta(hours=settings.PAYMENT_IDEMPOTENCY_TTL_HOURS),
        )

    def _refund(self, request, payment_id):
        data = RefundInput.read(request.data)
        key = request.headers[IDEMPOTENCY_HEADER].strip().strip('"')
        # A client key may be 255 characters long; with the user prefix it would overflow the
        # log's key column (a 500), so the service gets a fixed-length digest of it instead.
        digest = hashlib.sha256(key.encode()).hexdigest()
        outcome = services.payment_refund(
            payment_id=payment_id,
            amount=data["amount"],
            reason=data["reason"],
            idempotency_key=f"api:{request.user.pk}:{digest}",
        )
        if outcome.status == services.FAILED:
            if outcome.declined:
                raise RefundDeclined(outcome.message, decline_code=outcome.decline_code)
            raise ProviderUnavailable(outcome.message)
        payment = selectors.payment_get(payment_id=payment_id)
        reason = data["reason"]
        staff_action_record(user=request.user, obj=payment, action="Refund", outcome=outcome.message, reason=reason)
        return ok(PaymentOutput.represent(payment), message=outcome.message)


class WebhookOutput(serializers.Serializer):
    outcome = serializers.CharField(help_text="What the event changed: refunded …, recorded …, duplicate, ignored…")


class StripeWebhookView(APIView):
    """Stripe's deliveries: provider-side refunds and disputes reach the payment ledger.

    No user authentication: the ``Stripe-Signature`` header, verified against
    ``STRIPE_WEBHOOK_SECRET``, is the credential; anything else is 400 ``INVALID_WEBHOOK``
    (so is every delivery while no secret is configured: nothing can be verified then).
    Each event id is applied once (a redelivery answers 200 ``duplicate``).
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="payments_webhook_stripe",
        tags=_TAGS,
        auth=[],
        request=OpenApiTypes.OBJECT,
        responses={
            200: WebhookOutput,
            400: OpenApiResponse(description="INVALID_WEBHOOK"),
        },
        parameters=[
            OpenApiParameter("Stripe-Signature", str, OpenApiParameter.HEADER, required=True),
        ],
    )
    def post(self, request, version=None):
        """Stripe: a signed event (``charge.refunded``, ``charge.dispute.created`` / ``.closed``)."""
        if not settings.STRIPE_WEBHOOK_SECRET:
            logger.error("stripe_webhook_secret_missing")
            raise WebhookRejected("STRIPE_WEBHOOK_SECRET is not set: nothing can be verified")
        try:
            report = stripe_report(
                payload=request.body,
                signature=request.headers.get("Stripe-Signature", ""),
                secret=settings.STRIPE_WEBHOOK_SECRET,
            )
        except InvalidWebhook as exc:
            raise WebhookRejected(str(exc))
        outcome = services.provider_report_record(provider="stripe", report=report)
        return ok(WebhookOutput({"outcome": outcome}).data)
