"""Staff views of stock. Read-only on purpose: every change must go through a service so it is
locked, ledgered and evented (stock adjustments: ``POST /api/v1/inventory/{id}/adjustments``)."""

from django.contrib import admin
from shop.events.admin import register_event_admin

from apps.inventory.models import Reservation, StockItem, StockMovement

register_event_admin("inventory")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(StockItem)
class StockItemAdmin(ReadOnlyAdmin):
    list_display = ("product_id", "on_hand", "reserved", "available", "updated_at")
    search_fields = ("product_id",)


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ("order_id", "product_id", "quantity", "status", "expires_at")
    list_filter = ("status",)
    search_fields = ("order_id", "product_id")


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "product_id", "reason", "on_hand_delta", "reserved_delta", "reference", "note")
    list_filter = ("reason",)
    search_fields = ("product_id", "reference")
