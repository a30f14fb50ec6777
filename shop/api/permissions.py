"""Who may call a staff endpoint: an active staff member holding the action's permission.

``is_staff`` alone opens nothing but the door; every staff action names its permission
(``shop.security.staff``), e.g. ``permission_classes = [staff_permission(staff.REFUND_PAYMENT)]``.
A staff user without it gets 403 ``FORBIDDEN``, like a customer.
"""

from rest_framework.permissions import BasePermission

from shop.security.staff import staff_can


class IsStaff(BasePermission):
    message = "Staff only."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_staff)


class HasStaffPermission(IsStaff):
    codename = ""
    message = "Your staff role does not allow this action."

    def has_permission(self, request, view):
        return staff_can(request.user, self.codename)


class IsStaffOrReadOnly(HasStaffPermission):
    """Anyone reads; writing needs the staff permission."""

    def has_permission(self, request, view):
        return request.method in ("GET", "HEAD", "OPTIONS") or super().has_permission(request, view)


def staff_permission(codename: str, *, public_read: bool = False) -> type[HasStaffPermission]:
    base = IsStaffOrReadOnly if public_read else HasStaffPermission
    return type(f"{base.__name__}_{codename}", (base,), {"codename": codename})
