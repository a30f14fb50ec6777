from django.contrib import admin

from apps.payments import services
from apps.payments.models import Payment, PaymentEvent
from shop.admin import (
    ActionRefused,
    LargeTableAdminMixin,
    ReadOnlyTabularInline,
    StaffPermissionsAdminMixin,
    confirm_for_each,
)
from shop.security import staff


class PaymentEventInline(ReadOnlyTabularInline):
    model = PaymentEvent
    fields = ("type", "amount", "provider_reference", "data", "created_at")


@admin.register(Payment)
class PaymentAdmin(LargeTableAdminMixin, StaffPermissionsAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "order_id",
        "status",
        "amount",
        "captured_amount",
        "refunded_amount",
        "currency",
        "created_at",
    )
    list_filter = ("status", "provider", ("created_at", admin.DateFieldListFilter))
    search_fields = ("=order_id", "=id", "provider_reference")
    date_hierarchy = "created_at"
    inlines = (PaymentEventInline,)
    actions = ("refund_remaining",)
    readonly_fields = tuple(f.name for f in Payment._meta.concrete_fields)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # money moves through refunds only: no Save buttons

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Refund everything still refundable", permissions=[staff.REFUND_PAYMENT])
    def refund_remaining(self, request, queryset):
        return confirm_for_each(
            self,
            request,
            queryset,
            label="Refund",
            explanation="Refunds what is still refundable of each selected payment, through the payment provider.",
            perform=lambda payment, reason: _refund_remaining(request, payment, reason),
        )


def _refund_remaining(request, payment, reason: str) -> str:
    try:
        outcome = services.payment_refund_known(  # keyed by the state the admin saw: a double submit refunds once
            payment_id=payment.id,
            reason=f"{reason} (by {request.user})",
            key_prefix=f"admin:{payment.id}",
            refunded_seen=payment.refunded_amount,
        )
    except services.PaymentError as exc:
        raise ActionRefused(str(exc))
    if outcome.status == services.FAILED:
        raise ActionRefused(outcome.message)
    return outcome.message
