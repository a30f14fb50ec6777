"""The admin's sign-in: a throttle (django-axes) and two-factor for staff (django-otp TOTP).

**Throttle.** The admin login is a Django form, not an API view, so the API's limiter does
not see it; django-axes counts failed admin logins in the accounts database and answers
429 once ``AXES_FAILURE_LIMIT`` failures came from one client IP, or for one account from
one client IP, within ``AXES_COOLOFF_TIME``. The client IP is the API limiter's
(``TRUSTED_PROXY_COUNT``), the account is the normalised email. As for the API, a stranger
exhausting the limit against someone's address does not lock its owner out elsewhere.

The API sign-in authenticates without a request (``accounts.services.user_authenticate``)
and has its own limiter, so axes leaves it alone: the backend steps aside without a
request, and the handler records failures only for admin requests.

**Two-factor.** With ``ADMIN_REQUIRE_OTP`` (on by default in production) the admin login
form asks for a TOTP code, and only sessions verified by one of the user's confirmed
devices get in (``TwoFactorAdminSiteMixin``, django-otp's ``OTPAdminSite`` behaviour).
Staff register a TOTP device in the admin ("TOTP devices"); the first one is bootstrapped
with ``manage.py addstatictoken <email>`` (a one-time backup code).
"""

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from django import forms
from django.conf import settings
from django.db import transaction
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite

# Users and their OTP devices live in the accounts database (config/router.py).
USERS_DATABASE = "accounts"


class AdminLoginThrottleBackend(AxesStandaloneBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:  # the API sign-in: throttled by shop.api.ratelimit instead
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class AdminLoginHandler(AxesDatabaseHandler):
    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        if request is None or not self.is_admin_request(request):
            return None
        return super().user_login_failed(sender, credentials, request, **kwargs)


def admin_username(request, credentials) -> str:
    """The account as the login will look it up: trimmed and lowercase (one counter per mailbox)."""
    raw = (credentials or {}).get("username") or request.POST.get("username") or ""
    return raw.strip().lower()[:320]


class AdminTwoFactorForm(OTPAdminAuthenticationForm):
    """django-otp's admin login form, with its device lock taken in the accounts database.

    The library verifies inside ``transaction.atomic()`` on the *default* alias, which is
    deliberately a dummy here (a query that forgot its context must fail), so verification
    would crash. Same steps as ``OTPAuthenticationFormMixin.clean_otp``, on the right alias.
    """

    def clean_otp(self, user):
        if user is None:
            return
        validation_error = None
        with transaction.atomic(using=USERS_DATABASE):
            try:
                device = self._chosen_device(user)
                token = self.cleaned_data.get("otp_token")
                user.otp_device = None
                try:
                    if self.cleaned_data.get("otp_challenge"):
                        self._handle_challenge(device)
                    elif token:
                        user.otp_device = self._verify_token(user, token, device)
                    else:
                        raise forms.ValidationError(self.otp_error_messages["token_required"], code="token_required")
                finally:
                    if user.otp_device is None:
                        self._update_form(user)
            except forms.ValidationError as exc:  # raised outside, so the device's throttle state is kept
                validation_error = exc
        if validation_error:
            raise validation_error


class TwoFactorAdminSiteMixin:
    """django-otp's OTPAdminSite, switched by ``ADMIN_REQUIRE_OTP``: the login form asks for a
    TOTP code and an unverified session counts as not staff."""

    @property
    def login_form(self):
        return AdminTwoFactorForm if settings.ADMIN_REQUIRE_OTP else None

    @property
    def login_template(self):
        return OTPAdminSite.login_template if settings.ADMIN_REQUIRE_OTP else None

    def has_permission(self, request):
        verified = not settings.ADMIN_REQUIRE_OTP or request.user.is_verified()
        return super().has_permission(request) and verified
