"""JWT issue, rotation and revocation on top of simplejwt's blacklist tables (accounts DB).

simplejwt's own refresh serializer checks the blacklist and then blacklists in two separate
steps, so two concurrent refreshes with the same token can both succeed. Here the rotation
locks the token's outstanding row and inserts its blacklist row in one transaction: exactly
one caller wins, every other use of that refresh token is a reuse.

A reused (already rotated) refresh token means two parties hold the same credential, one of
them probably a thief. Following the OAuth 2.0 security BCP, every refresh token of that user
is then revoked, so both must sign in again.
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from apps.accounts.errors import InvalidRefreshToken
from apps.accounts.models import User

ALIAS = "accounts"


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


def _pair(refresh: RefreshToken) -> TokenPair:
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


def tokens_issue(*, user: User) -> TokenPair:
    return _pair(RefreshToken.for_user(user))


class _SignedRefreshToken(RefreshToken):
    """Signature, expiry, type and jti are verified on decode; the blacklist is consulted by
    the callers below under a row lock instead, so a reuse can be told from a forgery."""

    def check_blacklist(self) -> None:
        return None


def _decode(raw: str) -> RefreshToken:
    try:
        return _SignedRefreshToken(raw)
    except TokenError as exc:
        raise InvalidRefreshToken(str(exc)) from exc


def token_rotate(*, raw_refresh: str) -> TokenPair:
    token = _decode(raw_refresh)
    jti = token[api_settings.JTI_CLAIM]
    reused_by = None
    with transaction.atomic(using=ALIAS):
        # OutstandingToken orders by its nullable user FK; lock only our row, unordered.
        outstanding = OutstandingToken.objects.select_for_update(of=("self",)).filter(jti=jti).order_by("id").first()
        if outstanding is None or outstanding.user_id is None:
            raise InvalidRefreshToken("Unknown refresh token.")
        _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
        if not created:
            reused_by = outstanding.user_id
        else:
            user = User.objects.filter(pk=outstanding.user_id, is_active=True).first()
            if user is None:
                raise InvalidRefreshToken("User is inactive or deleted.")
            if api_settings.CHECK_REVOKE_TOKEN and token.get(api_settings.REVOKE_TOKEN_CLAIM) != (
                get_md5_hash_password(user.password)
            ):
                raise InvalidRefreshToken("The password has changed since this token was issued.")
            return tokens_issue(user=user)
    tokens_revoke_all(user_id=reused_by)
    raise InvalidRefreshToken("Refresh token was already used.")


def token_revoke(*, raw_refresh: str) -> None:
    """Logout: the refresh token can no longer be rotated (access tokens expire on their own).
    Idempotent: logging out twice with the same genuine token is not an error."""
    token = _decode(raw_refresh)
    with transaction.atomic(using=ALIAS):
        token.blacklist()


def tokens_revoke_all(*, user_id) -> int:
    """Blacklist every unexpired refresh token of a user (reuse detected, password reset, ...)."""
    with transaction.atomic(using=ALIAS):
        live = (
            OutstandingToken.objects.select_for_update(of=("self",))
            .filter(user_id=user_id, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True)
            .order_by("id")
        )
        created = BlacklistedToken.objects.bulk_create(
            [BlacklistedToken(token=row) for row in live], ignore_conflicts=True
        )
        return len(created)
