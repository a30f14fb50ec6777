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


@dataclass(frozen=True)
class Principal:
    """Who is calling, as every other context sees it (``request.user`` in the API).

    Duck-types the few ``User`` attributes permission checks read (``is_authenticated``,
    ``is_active``, ``is_staff``, ``pk``, ``has_perm``); ``permissions`` holds the staff
    permission names (``accounts.<codename>``) read once at authentication.
    """

    id: UUID
    email: str
    is_staff: bool
    is_active: bool
    is_superuser: bool
    permissions: frozenset[str]

    is_authenticated = True
    is_anonymous = False

    @property
    def pk(self) -> UUID:
        return self.id

    def has_perm(self, perm: str, obj=None) -> bool:
        return self.is_active and (self.is_superuser or perm in self.permissions)

    def get_username(self) -> str:
        return self.email


def _profile(user) -> UserProfile:
    return UserProfile(id=user.id, email=user.email, name=user.name, is_staff=user.is_staff)


def user_profiles_get(*, user_ids: Iterable[UUID]) -> dict[UUID, UserProfile]:
    """One query for any number of ids; unknown ids are simply absent from the result."""
    return {user.id: _profile(user) for user in selectors.users_by_ids(user_ids=user_ids)}
