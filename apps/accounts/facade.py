"""The public door of the accounts context: the only module other contexts may import.

Other contexts get a user's public profile as a frozen value; the ``User`` model never leaves
this context (its password hash and permission flags are nobody else's business).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from apps.accounts import selectors


@dataclass(frozen=True)
class UserProfile:
    id: UUID
    email: str
    name: str
    is_staff: bool


def _profile(user) -> UserProfile:
    return UserProfile(id=user.id, email=user.email, name=user.name, is_staff=user.is_staff)


def user_profile_get(*, user_id: UUID) -> UserProfile | None:
    user = selectors.user_get(user_id=user_id)
    return _profile(user) if user is not None else None


def user_profiles_get(*, user_ids: Iterable[UUID]) -> dict[UUID, UserProfile]:
    """One query for any number of ids; unknown ids are simply absent from the result."""
    return {user.id: _profile(user) for user in selectors.users_by_ids(user_ids=user_ids)}
