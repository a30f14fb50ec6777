"""Staff tools for checkouts: the saga's state and step log, and the two levers staff need
(retry the current step, compensate now), on the order page and on the sagas list."""

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from apps.orders.saga import orchestrator
from apps.orders.saga.models import ACTIVE_STATUSES, CheckoutSaga, SagaStatus, SagaStepLog
from shop.admin import (
    LargeTableAdminMixin,
    ReadOnlyAdminMixin,
    ReadOnlyTabularInline,
    StaffAction,
    StaffPermissionsAdminMixin,
    confirm_for_each,
)
from shop.admin_site import OPERATIONS, page_link
from shop.security import staff


def _saga_status(order_id) -> str | None:
    return CheckoutSaga.objects.filter(order_id=order_id).values_list("status", flat=True).first()


CHECKOUT_ACTIONS = (
    StaffAction(
        "retry-checkout",
        "Retry checkout step",
        staff.OPERATE_CHECKOUTS,
        lambda request, order, data: orchestrator.saga_admin_retry_step(order_id=order.pk),
        applies=lambda order: _saga_status(order.pk) in (*ACTIVE_STATUSES, SagaStatus.FAILED),
        explanation="Re-sends the command of the step the checkout waits on (a FAILED compensation is resumed).",
    ),
    StaffAction(
        "compensate-checkout",
        "Compensate checkout",
        staff.OPERATE_CHECKOUTS,
        lambda request, order, data: orchestrator.saga_admin_compensate(order_id=order.pk),
        applies=lambda order: _saga_status(order.pk) in ACTIVE_STATUSES,
        explanation="Stops the running checkout and unwinds it: the payment is voided, the stock released, "
        "the order cancelled.",
    ),
)


RETRY_EXPLANATION = CHECKOUT_ACTIONS[0].explanation
COMPENSATE_EXPLANATION = CHECKOUT_ACTIONS[1].explanation


def _overdue(queryset):
    return queryset.filter(status__in=ACTIVE_STATUSES, deadline__lt=timezone.now())


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return (("yes", "past their step deadline"),)

    def queryset(self, request, queryset):
        return _overdue(queryset) if self.value() == "yes" else queryset


class SagaStepLogInline(ReadOnlyTabularInline):
    model = SagaStepLog
    fields = ("created_at", "step", "attempt", "outcome", "detail")


@admin.register(CheckoutSaga)
class CheckoutSagaAdmin(LargeTableAdminMixin, StaffPermissionsAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    admin_section = OPERATIONS
    list_display = ("order_link", "status", "current_step", "step_attempts", "cancel_reason", "deadline", "updated_at")
    list_filter = (OverdueFilter, "status", "current_step", "cancel_reason")
    search_fields = ("=order_id",)
    readonly_fields = [f.name for f in CheckoutSaga._meta.concrete_fields]
    inlines = (SagaStepLogInline,)
    actions = ("retry_step", "compensate_now")
    ordering = ("-updated_at",)

    def operations_links(self, request):
        url = reverse("admin:orders_checkoutsaga_changelist") + "?overdue=yes"
        return [page_link("Overdue sagas", url, _overdue(CheckoutSaga.objects.all()).count())]

    @admin.display(description="order", ordering="order_id")
    def order_link(self, obj):
        url = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html('<a href="{}">{}</a>', url, obj.order_id)

    @admin.action(description="Retry the current step", permissions=[staff.OPERATE_CHECKOUTS])
    def retry_step(self, request, queryset):
        return confirm_for_each(
            self, request, queryset, label="Retry checkout step", explanation=RETRY_EXPLANATION,
            perform=lambda saga, reason: orchestrator.saga_admin_retry_step(order_id=saga.order_id),
        )  # fmt: skip

    @admin.action(description="Compensate now (cancel the checkout)", permissions=[staff.OPERATE_CHECKOUTS])
    def compensate_now(self, request, queryset):
        return confirm_for_each(
            self, request, queryset, label="Compensate checkout", explanation=COMPENSATE_EXPLANATION,
            perform=lambda saga, reason: orchestrator.saga_admin_compensate(order_id=saga.order_id),
        )  # fmt: skip


class CheckoutAdminMixin(StaffPermissionsAdminMixin):
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
            '<a href="{}" id="checkout-state">{} / {}</a> (attempt {}, deadline {})'
            '<table id="checkout-log"><tbody>{}</tbody></table>',
            link,
            saga.status,
            saga.current_step,
            saga.step_attempts,
            saga.deadline or "-",
            rows,
        )

    @admin.action(description="Checkout: retry the current step", permissions=[staff.OPERATE_CHECKOUTS])
    def retry_checkout_step(self, request, queryset):
        return confirm_for_each(
            self, request, queryset, label="Retry checkout step", explanation=RETRY_EXPLANATION,
            perform=lambda order, reason: orchestrator.saga_admin_retry_step(order_id=order.pk),
        )  # fmt: skip

    @admin.action(description="Checkout: compensate now", permissions=[staff.OPERATE_CHECKOUTS])
    def compensate_checkout(self, request, queryset):
        return confirm_for_each(
            self, request, queryset, label="Compensate checkout", explanation=COMPENSATE_EXPLANATION,
            perform=lambda order, reason: orchestrator.saga_admin_compensate(order_id=order.pk),
        )  # fmt: skip
