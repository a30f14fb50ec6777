"""Admin building blocks shared by the contexts (no models of the kernel's own)."""

from django.contrib import admin

from shop.security.staff import PERMISSIONS, staff_can


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


class StaffPermissionsAdminMixin:
    """Admin actions name the staff permission they need, as in
    ``@admin.action(permissions=[staff.REFUND_PAYMENT])``: Django then hides the action from,
    and refuses its POST to, staff without it (it calls ``has_<codename>_permission``)."""


def _has_staff_permission(codename: str):
    def check(self, request) -> bool:
        return staff_can(request.user, codename)

    check.__name__ = f"has_{codename}_permission"
    return check


for _codename, _name in PERMISSIONS:
    setattr(StaffPermissionsAdminMixin, f"has_{_codename}_permission", _has_staff_permission(_codename))
