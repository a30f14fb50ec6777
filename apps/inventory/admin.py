"""The warehouse's pages: stock per product (on hand, reserved, available, low stock), the
movement ledger, reservations. Read-only on purpose: stock changes only through the services
(locked, ledgered, evented); staff adjust it with the "Adjust stock" action, which asks a reason.
Product names come from the catalog facade (no cross-context foreign keys)."""

import uuid

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import F
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from apps.catalog import facade as catalog
from apps.inventory import services
from apps.inventory.errors import InventoryError
from apps.inventory.models import Reservation, StockItem, StockMovement
from apps.inventory.serializers import MAX_DELTA
from shop.admin import (
    ActionForm,
    ActionRefused,
    LargeTableAdminMixin,
    ReadOnlyAdminMixin,
    StaffAction,
    StaffActionsMixin,
)
from shop.api.idempotency import IdempotencyKeyReused
from shop.security import staff

MOVEMENTS_SHOWN = 50


class AdjustForm(ActionForm):
    delta = forms.IntegerField(
        min_value=-MAX_DELTA,
        max_value=MAX_DELTA,
        help_text="Units to add (a delivery) or, negative, to remove (count, damage).",
    )
    # One key per form shown: a double submit adjusts once (``services.stock_adjust``).
    once = forms.CharField(widget=forms.HiddenInput, initial=lambda: uuid.uuid4().hex, max_length=64)
    field_order = ("delta", "reason")

    def clean_delta(self):
        if self.cleaned_data["delta"] == 0:
            raise forms.ValidationError("An adjustment changes the stock: use a non-zero number.")
        return self.cleaned_data["delta"]


def _adjust(request, item, data):
    try:
        adjusted = services.stock_adjust(
            product_id=item.product_id, delta=data["delta"], reason=data["reason"], actor=request.user.get_username(),
            once_key=data["once"],
        )  # fmt: skip
    except InventoryError as exc:
        raise ActionRefused(str(exc))
    except IdempotencyKeyReused:
        raise ActionRefused("This form was already submitted with other values; open the action again.")
    return f"{data['delta']:+d} units; now {adjusted.on_hand} on hand, {adjusted.available} available."


class StockLevelFilter(admin.SimpleListFilter):
    title = "stock level"
    parameter_name = "level"

    def lookups(self, request, model_admin):
        return (("low", f"low (available ≤ {settings.INVENTORY_LOW_STOCK_THRESHOLD})"), ("out", "none available"))

    def queryset(self, request, queryset):
        if self.value() == "low":
            return queryset.filter(available_units__lte=settings.INVENTORY_LOW_STOCK_THRESHOLD)
        if self.value() == "out":
            return queryset.filter(available_units__lte=0)
        return queryset


class _WithProducts(ChangeList):
    """Names each page's products with one catalog call instead of one per row."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        products = catalog.product_snapshots_get(product_ids=[row.product_id for row in self.result_list])
        for row in self.result_list:
            row.product = products.get(row.product_id)


def _product_search(queryset, search_term):
    """A product id, or (through the catalog) a SKU or part of a product name."""
    try:
        return queryset.filter(product_id=uuid.UUID(search_term.strip())), False
    except ValueError:
        pass
    if not search_term.strip():
        return queryset, False
    return queryset.filter(product_id__in=catalog.product_ids_search(text=search_term)), False


@admin.register(StockItem)
class StockItemAdmin(LargeTableAdminMixin, StaffActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("product_name", "sku", "on_hand", "reserved", "available", "low_stock", "updated_at")
    list_filter = (StockLevelFilter,)
    search_fields = ("product_id",)  # see get_search_results
    search_help_text = "Product id, SKU or part of the product name."
    fields = ("product_id", "product_name", "sku", "on_hand", "reserved", "available", "updated_at", "movements")
    readonly_fields = fields
    staff_actions = (
        StaffAction(
            "adjust",
            "Adjust stock",
            staff.ADJUST_STOCK,
            _adjust,
            form=AdjustForm,
            explanation="Changes the units on hand; it is written to the movement ledger with your reason.",
        ),
    )

    def get_queryset(self, request):
        items = StockItem.objects.annotate(available_units=F("on_hand") - F("reserved"))
        return items.order_by(*self.get_ordering(request))

    def get_ordering(self, request):
        return ("available_units", "product_id")  # what runs out first, first

    def get_changelist(self, request, **kwargs):
        return _WithProducts

    def get_object(self, request, object_id, from_field=None):
        item = super().get_object(request, object_id, from_field)
        if item is not None:
            item.product = catalog.product_get(product_id=item.product_id)
        return item

    def get_search_results(self, request, queryset, search_term):
        return _product_search(queryset, search_term)

    @admin.display(description="product")
    def product_name(self, item):
        return item.product.name if item.product else "(not in the catalog)"

    @admin.display(description="SKU")
    def sku(self, item):
        return item.product.sku if item.product else ""

    @admin.display(description="available", ordering="available_units")
    def available(self, item):
        return item.available

    @admin.display(description="low stock", boolean=True)
    def low_stock(self, item):
        return item.available <= settings.INVENTORY_LOW_STOCK_THRESHOLD

    @admin.display(description="movement history")
    def movements(self, item):
        rows = StockMovement.objects.filter(product_id=item.product_id).order_by("-created_at", "-id")
        lines = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    m.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    m.reason,
                    f"{m.on_hand_delta:+d}",
                    f"{m.reserved_delta:+d}",
                    m.reference,
                    m.note,
                )
                for m in rows[:MOVEMENTS_SHOWN]
            ),
        )
        everything = reverse("admin:inventory_stockmovement_changelist") + f"?q={item.product_id}"
        return format_html(
            '<table id="stock-movements"><thead><tr><th>when</th><th>why</th><th>on hand</th><th>reserved</th>'
            '<th>reference</th><th>note</th></tr></thead><tbody>{}</tbody></table><a href="{}">all movements</a>',
            lines,
            everything,
        )


@admin.register(Reservation)
class ReservationAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("order_id", "product_id", "quantity", "status", "expires_at")
    list_filter = ("status",)
    search_fields = ("=order_id", "=product_id")
    date_hierarchy = "created_at"


@admin.register(StockMovement)
class StockMovementAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "product_id", "reason", "on_hand_delta", "reserved_delta", "reference", "note")
    list_filter = ("reason",)
    search_fields = ("=product_id", "reference")
    date_hierarchy = "created_at"
