"""Reads of the accounts context."""

from collections.abc import Iterable
from uuid import UUID

from django.db.models import Q, QuerySet

from apps.accounts.models import User

# The client-facing names of the sort keys, mapped to columns: only these reach order_by().
USER_SORT_FIELDS = {"email": "email", "name": "name", "dateJoined": "date_joined"}


def user_get(*, user_id: UUID) -> User | None:
    return User.objects.filter(pk=user_id).first()


def users_by_ids(*, user_ids: Iterable[UUID]) -> list[User]:
    ids = set(user_ids)
    if not ids:
        return []
    return list(User.objects.filter(pk__in=ids))


def user_list(
    *,
    search: str = "",
    is_staff: bool | None = None,
    is_active: bool | None = None,
    sort_by: str = "dateJoined",
    descending: bool = True,
) -> QuerySet:
    """Staff user search, sorted by an allow-listed ``USER_SORT_FIELDS`` key (then id, same direction)."""
    users = User.objects.all()
    if search:
        users = users.filter(Q(email__icontains=search) | Q(name__icontains=search))
    if is_staff is not None:
        users = users.filter(is_staff=is_staff)
    if is_active is not None:
        users = users.filter(is_active=is_active)
    prefix = "-" if descending else ""
    return users.order_by(f"{prefix}{USER_SORT_FIELDS[sort_by]}", f"{prefix}id")
