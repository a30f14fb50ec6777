"""Staff: the staff-only API, the Django admin, createsuperuser, and the accounts facade."""

import uuid

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from apps.accounts import facade
from apps.accounts.models import User
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import PASSWORD, UserFactory
from tests.support.queries import assert_max_queries

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)

USERS = "/api/v1/users"


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


# --- staff-only API ----------------------------------------------------------------------------


def test_non_staff_user_on_a_staff_action_is_403():
    response = client_for(UserFactory()).get(USERS)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"


def test_anonymous_on_a_staff_action_is_401():
    response = APIClient().get(USERS)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


def test_inactive_staff_is_refused():
    staff = UserFactory(staff=True)
    client = client_for(staff)
    User.objects.filter(pk=staff.pk).update(is_active=False)
    assert client.get(USERS).status_code == 401


def test_staff_lists_searches_filters_and_sorts_users():
    staff = UserFactory(staff=True, email="boss@example.com", name="Boss")
    UserFactory(email="carol@example.com", name="Carol")
    UserFactory(email="alice@example.com", name="Alice")
    client = client_for(staff)

    response = client.get(USERS, {"sortBy": "email", "order": "asc"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert [u["email"] for u in body["data"]] == ["alice@example.com", "boss@example.com", "carol@example.com"]
    assert body["pagination"]["total"] == 3
    assert response["X-Total-Count"] == "3"

    found = client.get(USERS, {"search": "CAR"}).json()["data"]
    assert [u["email"] for u in found] == ["carol@example.com"]
    staff_only = client.get(USERS, {"isStaff": "true"}).json()["data"]
    assert [u["email"] for u in staff_only] == ["boss@example.com"]
    paged = client.get(USERS, {"sortBy": "name", "order": "desc", "limit": 2, "page": 2}).json()
    assert [u["name"] for u in paged["data"]] == ["Alice"]


@pytest.mark.parametrize(
    "params",
    [
        {"sortBy": "password"},
        {"sortBy": "-email"},
        {"sortBy": "email; DROP TABLE accounts_user"},
        {"order": "sideways"},
        {"is_superuser": "true"},
        {"password__startswith": "argon2"},
        {"limit": 1000},
    ],
)
def test_user_list_accepts_only_allow_listed_parameters(params):
    response = client_for(UserFactory(staff=True)).get(USERS, params)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


# --- Django admin ------------------------------------------------------------------------------


def test_admin_login_page_renders_with_its_form_and_a_csp(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<form action="/admin/login/' in html and 'name="password"' in html
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_staff_signs_in_to_admin_and_searches_and_filters_users(client):
    from django.contrib.auth.models import Permission

    staff = UserFactory(staff=True, email="boss@example.com")
    staff.user_permissions.add(Permission.objects.get(codename="view_user", content_type__app_label="accounts"))
    UserFactory(email="carol@example.com", name="Carol Jones")
    # A fixed name: a random one sometimes contained "Jones" and matched the search.
    UserFactory(email="dave@example.com", name="Dave Smith", is_active=False)
    response = client.post("/admin/login/?next=/admin/", {"username": "boss@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/admin/"

    found = client.get("/admin/accounts/user/", {"q": "jones"})
    assert found.status_code == 200
    assert b"carol@example.com" in found.content and b"dave@example.com" not in found.content
    inactive = client.get("/admin/accounts/user/", {"is_active__exact": "0"})
    assert b"dave@example.com" in inactive.content and b"carol@example.com" not in inactive.content


def test_non_staff_cannot_sign_in_to_admin(client):
    UserFactory(email="carol@example.com")
    response = client.post("/admin/login/?next=/admin/", {"username": "carol@example.com", "password": PASSWORD})
    assert response.status_code == 200  # the form again, with an error
    assert client.get("/admin/").status_code == 302


def test_superuser_adds_a_user_in_admin(client):
    client.force_login(UserFactory(superuser=True))
    assert client.get("/admin/accounts/user/add/").status_code == 200
    response = client.post(
        "/admin/accounts/user/add/",
        {
            "email": "New@Example.com",
            "name": "New",
            "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert User.objects.get(email="new@example.com").check_password("a-long-pass-phrase")


# --- createsuperuser ---------------------------------------------------------------------------


def test_createsuperuser_noinput_lands_in_the_accounts_database(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "Root@Example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-pass-phrase")
    call_command("createsuperuser", interactive=False, verbosity=0)
    root = User.objects.using("accounts").get(email="root@example.com")
    assert root.is_staff and root.is_superuser and root.check_password("a-long-pass-phrase")


# --- facade ------------------------------------------------------------------------------------


def test_facade_returns_frozen_profiles_not_models():
    user = UserFactory(email="ann@example.com", name="Ann", staff=True)
    profiles = facade.user_profiles_get(user_ids=[user.id, uuid.uuid4()])
    assert profiles == {user.id: facade.UserProfile(id=user.id, email="ann@example.com", name="Ann", is_staff=True)}
    with pytest.raises(AttributeError):
        profiles[user.id].is_staff = False  # type: ignore[misc]


def test_facade_bulk_lookup_is_one_query_and_skips_unknown_ids():
    users = UserFactory.create_batch(3)
    unknown = uuid.uuid4()
    with assert_max_queries(1):
        profiles = facade.user_profiles_get(user_ids=[u.id for u in users] + [unknown])
    assert set(profiles) == {u.id for u in users}
    assert all(isinstance(p, facade.UserProfile) for p in profiles.values())
    with assert_max_queries(0):
        assert facade.user_profiles_get(user_ids=[]) == {}
