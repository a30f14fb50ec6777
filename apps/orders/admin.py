import uuid

from django.contrib import admin

from apps.orders.models import Order, OrderEventRecord, OrderItem, OrderStatusHistory
from apps.orders.saga.admin import CheckoutAdminMixin
from shop.admin import ReadOnlyAdminMixin, ReadOnlyTabularInline, StaffPermissionsAdminMixin
from shop.events.admin import register_event_admin

register_event_admin("orders")


class OrderItemInline(ReadOnlyTabularInline):
    model = OrderItem
    fields = ("product_id", "product_name", "sku", "unit_price", "quantity", "line_total")


class OrderStatusHistoryInline(ReadOnlyTabularInline):
    model = OrderStatusHistory
    fields = ("from_status", "to_status", "note", "created_at")
    readonly_fields = ("created_at",)


@admin.register(Order)
class OrderAdmin(CheckoutAdminMixin, StaffPermissionsAdminMixin, admin.ModelAdmin):
    """Orders with items and history; status changes go through the API/services, never this form."""

    list_display = ("id", "customer_email", "status", "total", "currency", "shipping_method", "created_at")
    list_filter = ("status", "shipping_method", ("created_at", admin.DateFieldListFilter))
    search_fields = ("customer_email",)
    date_hierarchy = "created_at"
    inlines = (OrderItemInline, OrderStatusHistoryInline)
    # The card token is write-only: it never appears in the admin.
    exclude = ("payment_token",)
    readonly_fields = tuple(
        f.name for f in Order._meta.get_fields() if f.concrete and not f.auto_created and f.name != "payment_token"
    ) + ("id",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        """A UUID finds the order (or the customer's orders); anything else searches the email snapshot."""
        try:
            exact = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(pk=exact) | queryset.filter(user_id=exact), False


@admin.register(OrderEventRecord)
class OrderEventRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The order event store, view only: events are appended by the services and never changed."""

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
