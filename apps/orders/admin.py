"""The order page staff work from: the order with its items and history, and — read through the
other contexts' facades — its payments and stock reservations, plus the checkout saga. Nothing
on it is editable: orders, money and stock move only through the actions (ship, deliver, cancel,
refund, retry/compensate the checkout), each confirmed with a reason that goes into the admin log.
"""

import re
import uuid

from django import forms
from django.contrib import admin
from django.utils.html import format_html, format_html_join

from apps.inventory import facade as inventory
from apps.orders import services
from apps.orders.errors import OrderError
from apps.orders.models import Order, OrderEventRecord, OrderItem, OrderStatus, OrderStatusHistory
from apps.orders.saga.admin import CHECKOUT_ACTIONS, CheckoutAdminMixin
from apps.payments import facade as payments
from shop.admin import (
    ActionForm,
    ActionRefused,
    LargeTableAdminMixin,
    ReadOnlyAdminMixin,
    ReadOnlyTabularInline,
    StaffAction,
    StaffActionsMixin,
)
from shop.security import staff

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class OrderItemInline(ReadOnlyTabularInline):
    model = OrderItem
    fields = ("product_id", "product_name", "sku", "unit_price", "quantity", "line_total")


class OrderStatusHistoryInline(ReadOnlyTabularInline):
    model = OrderStatusHistory
    fields = ("from_status", "to_status", "note", "created_at")
    readonly_fields = ("created_at",)


class ShipForm(ActionForm):
    tracking_number = forms.CharField(max_length=100)
    field_order = ("tracking_number", "reason")


class RefundForm(ActionForm):
    amount = forms.DecimalField(
        required=False, min_value=0.01, decimal_places=2, help_text="Leave empty to refund everything still refundable."
    )
    # One key per form shown: a double submit refunds once.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, initial=lambda: uuid.uuid4().hex, max_length=64)
    field_order = ("amount", "reason")


def _refusing(call):
    try:
        return call()
    except (OrderError, payments.PaymentError) as exc:
        raise ActionRefused(str(exc))


def _ship(request, order, data):
    _refusing(lambda: services.order_ship(order_id=order.pk, tracking_number=data["tracking_number"]))
    return f"shipped with tracking number {data['tracking_number']}."


def _deliver(request, order, data):
    _refusing(lambda: services.order_deliver(order_id=order.pk))
    return "delivered."


def _cancel(request, order, data):
    _refusing(lambda: services.order_cancel_request(order_id=order.pk, reason=services.CUSTOMER_REQUEST))
    return "cancelled; the checkout gives the money and the stock back."


def _refund(request, order, data):
    result = _refusing(
        lambda: payments.payment_refund(
            order_id=order.pk,
            amount=data["amount"],
            reason=f"{data['reason']} (by {request.user.get_username()})",
            idempotency_key=f"admin-refund:{data['idempotency_key']}",
        )
    )
    if result.status == "FAILED":
        raise ActionRefused(result.message)
    if result.replayed:  # a second submission of this form (a double-click, or a retry after "in progress")
        raise ActionRefused(f"Already done by this form's first submission: {result.message}")
    return result.message


def _refundable(order) -> bool:
    return any(p.captured_amount > p.refunded_amount for p in payments.payments_for_order(order_id=order.pk))


def _status_is(*statuses):
    return lambda order: order.status in statuses


ORDER_ACTIONS = (
    StaffAction(
        "ship",
        "Ship",
        staff.SHIP_ORDER,
        _ship,
        form=ShipForm,
        applies=lambda order: order.status == OrderStatus.CONFIRMED,
    ),
    StaffAction(
        "deliver", "Deliver", staff.SHIP_ORDER, _deliver, applies=lambda order: order.status == OrderStatus.SHIPPED
    ),
    StaffAction(
        "cancel",
        "Cancel for the customer",
        staff.OPERATE_CHECKOUTS,  # as in the API: cancelling a customer's order unwinds its checkout
        _cancel,
        applies=_status_is(OrderStatus.PENDING, OrderStatus.CONFIRMED),
        explanation="The order is cancelled now; the checkout then voids or refunds the payment and returns the stock.",
    ),
    StaffAction(
        "refund",
        "Refund",
        staff.REFUND_PAYMENT,
        _refund,
        form=RefundForm,
        applies=_refundable,
        explanation="Refunds the order's captured payment, in full or in part, through the payment provider.",
    ),
)


@admin.register(Order)
class OrderAdmin(LargeTableAdminMixin, StaffActionsMixin, CheckoutAdminMixin, admin.ModelAdmin):
    list_display = ("id", "customer_email", "status", "total", "currency", "shipping_method", "created_at")
    list_filter = ("status", "shipping_method", ("created_at", admin.DateFieldListFilter))
    search_fields = ("customer_email", "items__sku", "items__product_name")
    search_help_text = (
        "A whole e-mail address, order id, customer id or product id finds exactly those orders; "
        "other text searches e-mails, SKUs and product names."
    )
    date_hierarchy = "created_at"
    inlines = (OrderItemInline, OrderStatusHistoryInline)
    fieldsets = (
        (None, {"fields": ("id", "status", "customer_email", "user_id", "created_at", "updated_at")}),
        ("Checkout saga", {"fields": ("checkout",)}),
        ("Payments", {"fields": ("payments",)}),
        ("Stock reservations", {"fields": ("reservations",)}),
        ("Totals", {"fields": ("currency", "subtotal", "shipping_cost", "total", "payment_method")}),
        (
            "Shipping",
            {
                "fields": (
                    "shipping_method",
                    "tracking_number",
                    "shipping_street",
                    "shipping_city",
                    "shipping_state",
                    "shipping_zip_code",
                    "shipping_country",
                    "notes",
                    "cancellation_reason",
                )
            },
        ),  # fmt: skip
    )
    # The card token is write-only: it is in no fieldset, so it never appears here.
    readonly_fields = (
        *(f.name for f in Order._meta.concrete_fields if f.name != "payment_token"),
        "payments",
        "reservations",
    )
    staff_actions = (*ORDER_ACTIONS, *CHECKOUT_ACTIONS)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # read-only page: no Save buttons; changes go through the staff actions

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        """A UUID finds the order, the customer's orders or the orders of a product; a whole e-mail
        address that customer's orders (case-insensitive, along ``orders_order_email_ci``: the
        contains-search below reads every order and item, which grows with the tables); anything
        else searches the e-mail snapshot, SKUs and product names."""
        term = search_term.strip()
        if _EMAIL.fullmatch(term):
            return queryset.filter(customer_email__iexact=term), False
        try:
            exact = uuid.UUID(term)
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        # One indexed condition, found by what the id names (ids never repeat across kinds): an OR of
        # the three, the items' subquery among them, read every order and every item, twice a search.
        if queryset.filter(pk=exact).exists():
            return queryset.filter(pk=exact), False
        if queryset.filter(user_id=exact).exists():
            return queryset.filter(user_id=exact), False
        return queryset.filter(pk__in=OrderItem.objects.filter(product_id=exact).values("order_id")), False

    @admin.display(description="payments")
    def payments(self, obj):
        views = payments.payments_for_order(order_id=obj.pk)
        if not views:
            return "none"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (p.id, p.status, p.amount, p.currency, p.captured_amount, p.refunded_amount, p.provider_reference)
                for p in views
            ),
        )
        ledger = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (e.created_at.strftime("%Y-%m-%d %H:%M:%S"), e.type, e.amount, e.reason)
                for e in payments.payment_ledger_for_order(order_id=obj.pk)
            ),
        )
        return format_html(
            '<table id="order-payments"><thead><tr><th>payment</th><th>status</th><th>amount</th><th>captured</th>'
            "<th>refunded</th><th>provider reference</th></tr></thead><tbody>{}</tbody></table>"
            '<table id="order-payment-ledger"><thead><tr><th>when</th><th>what</th><th>amount</th><th>reason</th>'
            "</tr></thead><tbody>{}</tbody></table>",
            rows,
            ledger,
        )

    @admin.display(description="reservations")
    def reservations(self, obj):
        views = inventory.reservations_for_order(order_id=obj.pk)
        if not views:
            return "none"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((r.product_id, r.quantity, r.status, r.expires_at.strftime("%Y-%m-%d %H:%M:%S")) for r in views),
        )
        return format_html(
            '<table id="order-reservations"><thead><tr><th>product</th><th>quantity</th><th>status</th>'
            "<th>expires</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )


@admin.register(OrderEventRecord)
class OrderEventRecordAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The order event store, view only: events are appended by the services and never changed."""

    admin_section = "operations"
    list_display = ("aggregate_id", "sequence", "event_type", "version", "occurred_at")
    list_filter = ("event_type",)
    search_fields = ("aggregate_id",)  # see get_search_results: an exact order id
    ordering = ("-occurred_at", "-id")

    def get_search_results(self, request, queryset, search_term):
        """An order id lists that order's stream."""
        try:
            return queryset.filter(aggregate_id=uuid.UUID(search_term.strip())), False
        except ValueError:
            return queryset, False
