from decimal import Decimal

from rest_framework import serializers

from apps.payments.models import Payment
from shop.api.inputs import StrictInput
from shop.api.outputs import ModelOutput
from shop.api.sanitize import CleanCharField


class PaymentOutput(ModelOutput):
    class Meta:
        model = Payment
        fields = ("id", "order_id", "amount", "currency", "status", "provider", "captured_amount", "refunded_amount",
                  "decline_code", "created_at", "updated_at")  # fmt: skip


class RefundInput(StrictInput):
    amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0.01"), required=False, allow_null=True, default=None,
        help_text="Omit (or null) to refund everything still refundable.",
    )  # fmt: skip
    reason = CleanCharField(min_length=1, max_length=200, required=False, default="requested_by_customer")
