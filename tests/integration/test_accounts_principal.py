"""Principals, not models, cross contexts: a signed-in API request carries the accounts facade's
frozen ``Principal``, and staff permission checks work on it."""

import dataclasses

import pytest
from django.contrib.auth.models import Group, Permission
from rest_framework.test import APIRequestFactory
from rest_framework_simplejwt.tokens import AccessToken

from apps.accounts.authentication import PrincipalJWTAuthentication
from apps.accounts.facade import Principal
from apps.accounts.models import User
from shop.security import staff
from tests.factories.accounts import UserFactory

pytestmark = pytest.mark.django_db(databases=["accounts"])


def _authenticate(user) -> object:
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    authenticated, _token = PrincipalJWTAuthentication().authenticate(request)
    return authenticated


def test_a_bearer_token_authenticates_as_a_frozen_principal_not_the_user_model():
    user = UserFactory()
    principal = _authenticate(user)
    assert isinstance(principal, Principal) and not isinstance(principal, User)
    assert (principal.id, principal.pk, principal.email, principal.is_staff) == (user.id, user.id, user.email, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        principal.is_staff = True
    assert not staff.staff_can(principal, staff.REFUND_PAYMENT)


def test_staff_permissions_from_groups_reach_the_principal():
    member = UserFactory(staff=True, perms=[])
    group = Group.objects.using("accounts").create(name="principal-test-warehouse")
    group.permissions.add(
        Permission.objects.using("accounts").get(content_type__app_label=staff.APP_LABEL, codename=staff.SHIP_ORDER)
    )
    member.groups.add(group)
    principal = _authenticate(member)
    assert staff.staff_can(principal, staff.SHIP_ORDER)
    assert not staff.staff_can(principal, staff.REFUND_PAYMENT)


def test_a_superuser_principal_holds_every_staff_permission():
    principal = _authenticate(UserFactory(superuser=True, perms=[]))
    assert all(staff.staff_can(principal, codename) for codename, _ in staff.PERMISSIONS)


def test_an_inactive_staff_member_holds_no_permission_even_if_granted():
    user = UserFactory(staff=True)
    principal = Principal(
        id=user.id, email=user.email, is_staff=True, is_active=False, is_superuser=False,
        permissions=frozenset({staff.perm(staff.REFUND_PAYMENT)}),
    )  # fmt: skip
    assert not staff.staff_can(principal, staff.REFUND_PAYMENT)
