from rest_framework.permissions import BasePermission


class IsStaff(BasePermission):
    """Staff-only API actions (catalog writes, stock adjustments, shipping, refunds)."""

    message = "Staff only."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_staff)


class IsStaffOrReadOnly(IsStaff):
    def has_permission(self, request, view):
        return request.method in ("GET", "HEAD", "OPTIONS") or super().has_permission(request, view)
