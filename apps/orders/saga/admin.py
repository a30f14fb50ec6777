"""Staff tools for checkouts: the saga's state and step log, and the two levers staff need."""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from apps.orders.saga import orchestrator
from apps.orders.saga.models import CheckoutSaga, SagaStepLog
from shop.admin import ReadOnlyTabularInline, StaffPermissionsAdminMixin
from shop.security import staff


def _run_for_each(modeladmin, request, order_ids, action, verb: str) -> None:
    results = [f"{order_id}: {action(order_id=order_id)}" for order_id in order_ids]
    modeladmin.message_user(request, f"{verb}: " + "; ".join(results), messages.INFO)


class SagaStepLogInline(ReadOnlyTabularInline):
    model = SagaStepLog
    fields = ("created_at", "step", "attempt", "outcome", "detail")


@admin.register(CheckoutSaga)
class CheckoutSagaAdmin(StaffPermissionsAdminMixin, admin.ModelAdmin):
    list_display = ("order_id", "status", "current_step", "step_attempts", "cancel_reason", "deadline", "updated_at")
    list_filter = ("status", "current_step", "cancel_reason")
    search_fields = ("order_id",)
    readonly_fields = [f.name for f in CheckoutSaga._meta.concrete_fields]
    inlines = (SagaStepLogInline,)
    actions = ("retry_step", "compensate_now")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry the current step", permissions=[staff.OPERATE_CHECKOUTS])
    def retry_step(self, request, queryset):
        ids = queryset.values_list("order_id", flat=True)
        _run_for_each(self, request, ids, orchestrator.saga_admin_retry_step, "Retry")

    @admin.action(description="Compensate now (cancel the checkout)", permissions=[staff.OPERATE_CHECKOUTS])
    def compensate_now(self, request, queryset):
        ids = queryset.values_list("order_id", flat=True)
        _run_for_each(self, request, ids, orchestrator.saga_admin_compensate, "Compensate")


class CheckoutAdminMixin:
    """Mixed into the order admin: the checkout panel on the order page and the same two actions."""

    actions = ("retry_checkout_step", "compensate_checkout")

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "checkout")

    @admin.display(description="checkout saga")
    def checkout(self, obj):
        saga = CheckoutSaga.objects.filter(order_id=obj.pk).first()
        if saga is None:
            return "not started"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>#{}</td><td>{}</td><td>{}</td></tr>",
            (
                (e.created_at.strftime("%H:%M:%S.%f")[:-3], e.step, e.attempt, e.outcome, e.detail)
                for e in saga.log.all()
            ),
        )
        link = reverse("admin:orders_checkoutsaga_change", args=[saga.pk])
        return format_html(
            '<a href="{}">{} / {}</a> (attempt {}, deadline {})<table>{}</table>',
            link,
            saga.status,
            saga.current_step,
            saga.step_attempts,
            saga.deadline or "-",
            rows,
        )

    @admin.action(description="Checkout: retry the current step", permissions=[staff.OPERATE_CHECKOUTS])
    def retry_checkout_step(self, request, queryset):
        _run_for_each(self, request, queryset.values_list("pk", flat=True), orchestrator.saga_admin_retry_step, "Retry")

    @admin.action(description="Checkout: compensate now", permissions=[staff.OPERATE_CHECKOUTS])
    def compensate_checkout(self, request, queryset):
        ids = queryset.values_list("pk", flat=True)
        _run_for_each(self, request, ids, orchestrator.saga_admin_compensate, "Compensate")
