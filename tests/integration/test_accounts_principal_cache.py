"""The cached customer principal (apps/accounts/authentication.py) never outlives a change to the
user: each test authenticates once (filling the cache), changes the user, and sends the next
request with the same token. Real commits (``transaction=True``): the entry is dropped when the
change commits, as it is in production."""

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from tests.factories.accounts import UserFactory

ME = "/api/v1/auth/me"


def _bearer(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _accounts_queries(client) -> tuple[int, int]:
    with CaptureQueriesContext(connections["accounts"]) as queries:
        status = client.get(ME).status_code
    return status, sum('"accounts_user"' in q["sql"] for q in queries.captured_queries)


@pytest.mark.django_db(databases=["accounts"], transaction=True)
def test_a_customer_request_after_the_first_does_not_read_the_user_row_to_authenticate(settings):
    client = _bearer(AccessToken.for_user(UserFactory()))
    assert client.get(ME).status_code == 200
    status, cached_reads = _accounts_queries(client)
    settings.ACCOUNTS_PRINCIPAL_CACHE_SECONDS = 0
    _, uncached_reads = _accounts_queries(client)
    assert status == 200
    assert cached_reads == uncached_reads - 1


@pytest.mark.django_db(databases=["accounts"], transaction=True)
def test_a_cached_customer_deactivated_by_a_save_is_refused_at_the_next_request():
    user = UserFactory()
    client = _bearer(AccessToken.for_user(user))
    assert client.get(ME).status_code == 200
    user.is_active = False
    user.save()
    assert client.get(ME).status_code == 401


@pytest.mark.django_db(databases=["accounts"], transaction=True)
def test_a_cached_customer_token_dies_with_a_password_change_and_a_new_token_works_at_once():
    user = UserFactory()
    old = _bearer(AccessToken.for_user(user))
    assert old.get(ME).status_code == 200
    user.set_password("a-brand-new-pass-phrase")
    user.save()
    assert old.get(ME).status_code == 401
    assert _bearer(AccessToken.for_user(user)).get(ME).status_code == 200


@pytest.mark.django_db(databases=["accounts"], transaction=True)
def test_a_deleted_cached_customer_is_refused():
    user = UserFactory()
    client = _bearer(AccessToken.for_user(user))
    assert client.get(ME).status_code == 200
    user.delete()
    assert client.get(ME).status_code == 401


@pytest.mark.django_db(databases=["accounts"], transaction=True)
def test_staff_principals_are_never_cached_so_a_revoked_permission_counts_at_once():
    staff = UserFactory(is_staff=True)
    client = _bearer(AccessToken.for_user(staff))
    assert client.get(ME).status_code == 200
    _, first = _accounts_queries(client)
    _, second = _accounts_queries(client)
    assert first == second >= 1  # read every time
