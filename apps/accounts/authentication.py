"""API authentication: a JWT names a user; views of every context receive its ``Principal``.

simplejwt does the checks (signature, expiry, revocation by password change, active user);
the ``User`` model instance then stays inside the accounts context and the request carries
the frozen principal from the accounts facade instead.

A customer's principal is cached in Redis (``ACCOUNTS_PRINCIPAL_CACHE_SECONDS``) with the
password digest it was read with. Without it every authenticated request reads the accounts
database: a query and a server-side commit, one of the thirteen a checkout cost
(docs/performance.md). What keeps the cache from weakening the checks:

- Only customers are cached. A staff principal carries group permissions, which change without
  the user row being saved, so staff are read from the database on every request.
- Saving or deleting a user drops the entry once the change commits (``_forget`` below), so a
  password change, a deactivation or a promotion to staff counts from the next request. A request
  that read the old row just before such a commit can still store it afterwards; the TTL bounds
  that race.
- A token whose revocation digest differs from the cached one goes to the database, so a token
  issued after a password change is never refused by an older entry.
- With Redis unreachable every request reads the database (``shop.cache`` degrades).
"""

import uuid

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from apps.accounts.facade import Principal
from apps.accounts.models import User
from shop import cache


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


def _principal_key(user_id) -> str:
    return f"accounts:principal:{user_id}"


def _revocation_digest(source) -> str | None:
    """What the token's revocation claim must match: from a token, or from a user's password."""
    if not api_settings.CHECK_REVOKE_TOKEN:
        return None
    if isinstance(source, User):
        return get_md5_hash_password(source.password)
    return source.get(api_settings.REVOKE_TOKEN_CLAIM)


class PrincipalJWTAuthentication(JWTAuthentication):
    def get_user(self, validated_token) -> Principal:
        user_id = validated_token.get(api_settings.USER_ID_CLAIM)
        seconds = settings.ACCOUNTS_PRINCIPAL_CACHE_SECONDS
        if user_id is None or seconds <= 0:
            return principal_of(super().get_user(validated_token))
        key = _principal_key(user_id)
        cached = cache.lookup(key, local=False)
        if cached is not None and cached["digest"] == _revocation_digest(validated_token):
            return _customer(cached)
        user = super().get_user(validated_token)  # every simplejwt check, against the database
        principal = principal_of(user)
        if not user.is_staff and not user.is_superuser:
            entry = {"id": str(user.id), "email": user.email, "digest": _revocation_digest(user)}
            cache.store(key, entry, ttl=seconds)  # JSON, as everything in the cache
        return principal


def _customer(entry: dict) -> Principal:
    """The principal of an active customer (only those are cached): no staff flag, no permission."""
    return Principal(
        id=uuid.UUID(entry["id"]),
        email=entry["email"],
        is_staff=False,
        is_active=True,
        is_superuser=False,
        permissions=frozenset(),
    )


@receiver(post_save, sender=User, dispatch_uid="accounts.principal.saved")
@receiver(post_delete, sender=User, dispatch_uid="accounts.principal.deleted")
def _forget(sender, instance: User, using: str, **kwargs) -> None:
    """Once the change commits (at once outside a transaction): dropping it earlier would let a
    concurrent request refill the entry from the row as it was before."""
    key = _principal_key(instance.pk)
    transaction.on_commit(lambda: cache.invalidate(key), using=using)


class PrincipalJWTScheme(SimpleJWTScheme):
    """The OpenAPI security scheme is simplejwt's bearer token, as before."""

    target_class = "apps.accounts.authentication.PrincipalJWTAuthentication"
