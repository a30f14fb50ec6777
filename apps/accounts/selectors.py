"""Reads of the accounts context."""

from collections.abc import Iterable
from uuid import UUID

from django.db.models import Q, QuerySet

from apps.accounts.models import User


def user_get(*, user_id: UUID) -> User | None:
    return User.objects.filter(pk=user_id).first()


def users_by_ids(*, user_ids: Iterable[UUID]) -> list[User]:
    ids = set(user_ids)
    if not ids:
        return []
    return list(User.objects.filter(pk__in=ids))


def user_list(
    *, search: str = "", is_staff: bool | None = None, is_active: bool | None = None, ordering: str
) -> QuerySet:
    """Staff user search. ``ordering`` comes from the view's allow-list, never from the client."""
    users = User.objects.all()
    if search:
        users = users.filter(Q(email__icontains=search) | Q(name__icontains=search))
    if is_staff is not None:
        users = users.filter(is_staff=is_staff)
    if is_active is not None:
        users = users.filter(is_active=is_active)
    return users.order_by(ordering, "id")
