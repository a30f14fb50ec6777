"""Input and output shapes of the orders API.

Input follows the spec's CreateOrderSchema (zod) strictly: a quantity must be a JSON integer
(not "5", not 5.0) and text must be a JSON string, as zod would insist; unknown keys are a
400 at every level, and free text (address, notes, tracking number) is cleaned like every
other free text (``CleanCharField``: no markup, no control characters). Output: v1 carries
money as decimal strings; v2 as ``{amount, currency}`` objects with the customer embedded.
"""

import re
from datetime import datetime, time, timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.orders.models import Order, OrderItem, OrderStatus, OrderStatusHistory, ShippingMethod
from apps.orders.selectors import SORT_FIELDS
from shop.api.inputs import QueryParams, SortedQuery, StrictInput
from shop.api.outputs import ModelOutput
from shop.api.sanitize import CleanCharField

ZIP_CODE = r"^\d{5}(-\d{4})?$"


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictRegexField(serializers.RegexField, StrictCharField):
    pass


PAYMENT_TOKEN = re.compile(r"^(tok|pm)_[A-Za-z0-9_]{1,100}$")
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){11,18}")


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def looks_like_a_card_number(text: str) -> bool:
    """A run of 12–19 digits (spaces or dashes between them allowed) that passes the Luhn check."""
    return any(_luhn_valid(re.sub(r"[ -]", "", run)) for run in _DIGIT_RUN.findall(text))


class PaymentTokenField(StrictCharField):
    """The provider's token for the card (``tok_…``, or a PaymentMethod ``pm_…``), never card data.

    Anything that looks like a card number is refused before it is stored anywhere, and the error
    says why without repeating it. PCI DSS keeps card numbers out of systems like this one: the
    storefront sends them to the provider, which answers with the token.
    """

    default_error_messages = {
        "card_number": "This looks like a card number. Send the payment provider's token (tok_…, pm_…) instead.",
        "format": "Must be a payment provider token: tok_… or pm_… (letters, digits, underscores).",
    }

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if looks_like_a_card_number(value):
            self.fail("card_number")
        if not PAYMENT_TOKEN.match(value):
            self.fail("format")
        return value


class OrderItemInput(StrictInput):
    product_id = serializers.UUIDField()
    quantity = StrictIntegerField(min_value=1, max_value=100)


class ShippingAddressSerializer(StrictInput):
    street = CleanCharField(min_length=1, max_length=200)
    city = CleanCharField(min_length=1, max_length=100)
    state = CleanCharField(min_length=2, max_length=2)
    zip_code = StrictRegexField(ZIP_CODE, max_length=10, error_messages={"invalid": "Must be 12345 or 12345-6789."})
    country = CleanCharField(min_length=3, max_length=3)


class PaymentInput(StrictInput):
    method = serializers.ChoiceField(choices=["card"])
    token = PaymentTokenField(min_length=4, max_length=103, write_only=True)


class OrderCreateInput(StrictInput):
    items = serializers.ListField(child=OrderItemInput(), min_length=1, max_length=50)
    shipping_address = ShippingAddressSerializer()
    shipping_method = serializers.ChoiceField(choices=ShippingMethod.choices)
    notes = CleanCharField(max_length=500, multiline=True, required=False, allow_blank=True, default="")
    payment = PaymentInput()

    def validate_items(self, items):
        product_ids = [item["product_id"] for item in items]
        if len(set(product_ids)) != len(product_ids):
            raise serializers.ValidationError("Each product may appear once; use its quantity.")
        return items


class OrderShipInput(StrictInput):
    tracking_number = CleanCharField(min_length=1, max_length=100)


class DateOrDateTimeField(serializers.DateTimeField):
    """``2024-05-01`` means that whole day; a full ISO datetime is taken as is."""

    default_error_messages = {"out_of_range": "Date out of range."}

    def __init__(self, *, end_of_day: bool = False, **kwargs):
        self.end_of_day = end_of_day
        super().__init__(**kwargs)

    def to_internal_value(self, value):
        try:
            return self._moment(value)
        except OverflowError:  # the day after 9999-12-31 (an end of day), or its last microsecond
            self.fail("out_of_range")

    def _moment(self, value):
        if isinstance(value, str) and len(value) == 10:
            try:
                day = datetime.strptime(value, "%Y-%m-%d").date()
            except ValueError:
                self.fail("invalid", format="YYYY-MM-DD or ISO 8601")
            moment = datetime.combine(day + timedelta(days=1) if self.end_of_day else day, time.min)
            return timezone.make_aware(moment, timezone.get_default_timezone())
        parsed = super().to_internal_value(value)
        return parsed + timedelta(microseconds=1) if self.end_of_day else parsed


class OrderListParams(SortedQuery):
    SORT_FIELDS = SORT_FIELDS

    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
    createdFrom = DateOrDateTimeField(required=False)
    createdTo = DateOrDateTimeField(required=False, end_of_day=True)
    userId = serializers.UUIDField(required=False, help_text="Staff only: one customer's orders.")
    email = serializers.EmailField(
        required=False, help_text="Staff only: orders placed with this e-mail address (exact, any case)."
    )


# --- v1 output ---------------------------------------------------------------------------------


class OrderItemV1(ModelOutput):
    class Meta:
        model = OrderItem
        fields = ("product_id", "product_name", "sku", "unit_price", "quantity", "line_total")


class StatusHistoryOutput(ModelOutput):
    class Meta:
        model = OrderStatusHistory
        fields = ("from_status", "to_status", "note", "created_at")


class ShippingAddressOutput(serializers.Serializer):
    street = serializers.CharField(source="shipping_street")
    city = serializers.CharField(source="shipping_city")
    state = serializers.CharField(source="shipping_state")
    zip_code = serializers.CharField(source="shipping_zip_code")
    country = serializers.CharField(source="shipping_country")


_ORDER_FIELDS = (
    "id",
    "status",
    "processing",
    "shipping_address",
    "shipping_method",
    "notes",
    "payment_method",
    "cancellation_reason",
    "tracking_number",
    "created_at",
    "updated_at",
)


class OrderV1(ModelOutput):
    processing = serializers.BooleanField(read_only=True, help_text="True while the checkout is still running.")
    shipping_address = ShippingAddressOutput(source="*", read_only=True)
    items = OrderItemV1(many=True, read_only=True)

    class Meta:
        model = Order
        fields = (*_ORDER_FIELDS, "user_id", "currency", "subtotal", "shipping_cost", "total", "items")


class OrderDetailV1(OrderV1):
    status_history = StatusHistoryOutput(source="history", many=True, read_only=True)

    class Meta(OrderV1.Meta):
        fields = (*OrderV1.Meta.fields, "status_history")


# --- v2 output ---------------------------------------------------------------------------------


class MoneyOutput(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()


@extend_schema_field(MoneyOutput)
class MoneyField(serializers.Field):
    """A Decimal attribute rendered with its currency: ``{"amount": "12.50", "currency": "USD"}``.

    Rendered by ``MoneyOutput``'s own amount field, built once: a ``MoneyOutput`` per value
    (three to five per order line of a v2 response) built and bound a serializer each time."""

    _amount = MoneyOutput().fields["amount"]

    def __init__(self, amount: str, currency=lambda obj: obj.currency, **kwargs):
        self.amount, self.currency = amount, currency
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, obj):
        amount = self._amount.to_representation(getattr(obj, self.amount))
        return {"amount": amount, "currency": str(self.currency(obj))}


def _item_currency(item: OrderItem) -> str:
    return item.order.currency  # the prefetch caches the parent order: no query


class OrderItemV2(ModelOutput):
    unit_price = MoneyField("unit_price", _item_currency)
    line_total = MoneyField("line_total", _item_currency)

    class Meta:
        model = OrderItem
        fields = ("product_id", "product_name", "sku", "quantity", "unit_price", "line_total")


class CustomerOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class OrderV2(ModelOutput):
    """``context["customers"]`` maps user id → public profile (one bulk look-up per page)."""

    processing = serializers.BooleanField(read_only=True, help_text="True while the checkout is still running.")
    shipping_address = ShippingAddressOutput(source="*", read_only=True)
    customer = serializers.SerializerMethodField()
    items = OrderItemV2(many=True, read_only=True)
    subtotal = MoneyField("subtotal")
    shipping = MoneyField("shipping_cost")
    total = MoneyField("total")

    class Meta:
        model = Order
        fields = (*_ORDER_FIELDS, "customer", "items", "subtotal", "shipping", "total")

    @extend_schema_field(CustomerOutput(allow_null=True))
    def get_customer(self, order):
        profile = self.context.get("customers", {}).get(order.user_id)
        return None if profile is None else CustomerOutput(profile).data


class OrderDetailV2(OrderV2):
    status_history = StatusHistoryOutput(source="history", many=True, read_only=True)

    class Meta(OrderV2.Meta):
        fields = (*OrderV2.Meta.fields, "status_history")


# --- event store (staff) -----------------------------------------------------------------------


class OrderReplayParams(QueryParams):
    at = serializers.DateTimeField(
        required=False, help_text="ISO 8601 moment to rebuild the order at (default: now). URL-encode a '+' offset."
    )


class OrderEventOutput(serializers.Serializer):
    """One stored event exactly as it was written (its own schema ``version``; replay upcasts)."""

    id = serializers.UUIDField(source="event_id")
    sequence = serializers.IntegerField()
    type = serializers.CharField(source="event_type")
    version = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    correlation_id = serializers.CharField()
    causation_id = serializers.CharField()
    data = serializers.DictField(help_text="The event's data in that version's schema.")


class SnapshotItemOutput(serializers.Serializer):
    product_id = serializers.UUIDField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)


class OrderSnapshotOutput(serializers.Serializer):
    """The order rebuilt from its events alone; ``asOf`` is when the last folded change started."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    currency = serializers.CharField(allow_null=True)
    total = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    items = SnapshotItemOutput(many=True)
    cancellation_reason = serializers.CharField()
    tracking_number = serializers.CharField()
    version = serializers.IntegerField(help_text="Sequence number of the last event folded in.")
    as_of = serializers.DateTimeField()
