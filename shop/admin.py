"""Admin building blocks shared by the contexts (no models of the kernel's own)."""

from django.contrib import admin


class ReadOnlyAdminMixin:
    """Staff may look, never write: these rows change only through the services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyTabularInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
