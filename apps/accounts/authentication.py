"""API authentication: a JWT names a user; views of every context receive its ``Principal``.

simplejwt does the checks (signature, expiry, revocation by password change, active user);
the ``User`` model instance then stays inside the accounts context and the request carries
the frozen principal from the accounts facade instead.
"""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication

from apps.accounts.facade import Principal
from apps.accounts.models import User


def principal_of(user: User) -> Principal:
    staff = user.is_active and user.is_staff
    return Principal(
        id=user.id,
        email=user.email,
        is_staff=user.is_staff,
        is_active=user.is_active,
        is_superuser=user.is_superuser,
        # Staff permissions come from groups: read once here, not per check.
        permissions=frozenset(user.get_all_permissions()) if staff and not user.is_superuser else frozenset(),
    )


class PrincipalJWTAuthentication(JWTAuthentication):
    def get_user(self, validated_token) -> Principal:
        return principal_of(super().get_user(validated_token))


class PrincipalJWTScheme(SimpleJWTScheme):
    """The OpenAPI security scheme is simplejwt's bearer token, as before."""

    target_class = "apps.accounts.authentication.PrincipalJWTAuthentication"
