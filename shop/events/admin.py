"""Staff views of a context's event tables; dead letters can be replayed from the list."""

from django.contrib import admin, messages
from django.db.models import Value
from django.db.models.functions import Left, StrIndex

from shop.admin import StaffPermissionsAdminMixin
from shop.events import inbox
from shop.events.store import dead_letter_model, inbox_model, outbox_model
from shop.security import staff


class _ContextAdmin(admin.ModelAdmin):
    alias: str = ""

    def get_queryset(self, request):
        return super().get_queryset(request).using(self.alias)

    def has_add_permission(self, request):
        return False


class OutboxAdmin(_ContextAdmin):
    list_display = ("event_type", "version", "aggregate_id", "created_at", "sent_at", "attempts", "last_error")
    list_filter = ("event_type", ("sent_at", admin.EmptyFieldListFilter))
    search_fields = ("aggregate_id", "event_type", "id")
    readonly_fields = (
        "id", "event_type", "version", "aggregate_id", "envelope", "created_at", "sent_at", "attempts", "last_error",
    )  # fmt: skip


class InboxAdmin(_ContextAdmin):
    list_display = ("consumer", "event_type", "event_id", "processed_at")
    list_filter = ("consumer", "event_type")
    search_fields = ("event_id",)


class ErrorKindFilter(admin.SimpleListFilter):
    """Filter by the exception class that ended the delivery (errors read "Class: message")."""

    title = "error"
    parameter_name = "error_kind"

    def lookups(self, request, model_admin):
        kinds = (
            model_admin.get_queryset(request)
            .annotate(kind=Left("error", StrIndex("error", Value(":")) - 1))
            .values_list("kind", flat=True)
            .distinct()
            .order_by("kind")
        )
        return [(kind, kind) for kind in kinds[:50] if kind]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(error__startswith=f"{self.value()}:")
        return queryset


class DeadLetterAdmin(StaffPermissionsAdminMixin, _ContextAdmin):
    list_display = ("event_type", "consumer", "status", "attempts", "created_at", "short_error")
    list_filter = ("status", "event_type", "consumer", ErrorKindFilter)
    search_fields = ("event_id", "error")
    readonly_fields = ("consumer", "event_id", "event_type", "envelope", "error", "attempts", "created_at")
    actions = ("replay_selected",)

    @admin.display(description="error")
    def short_error(self, obj):
        return obj.error[:120]

    @admin.action(description="Replay selected dead letters", permissions=[staff.REPLAY_DEAD_LETTERS])
    def replay_selected(self, request, queryset):
        done = failed = 0
        for pk in queryset.values_list("pk", flat=True):
            if inbox.replay(self.alias, pk):
                done += 1
            else:
                failed += 1
        level = messages.SUCCESS if not failed else messages.WARNING
        self.message_user(request, f"Replayed {done}; {failed} failed again.", level)


def register_event_admin(alias: str) -> None:
    for model, base in (
        (outbox_model(alias), OutboxAdmin),
        (inbox_model(alias), InboxAdmin),
        (dead_letter_model(alias), DeadLetterAdmin),
    ):
        admin.site.register(model, type(f"{alias.title()}{base.__name__}", (base,), {"alias": alias}))
