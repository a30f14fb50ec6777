"""Registration, JWT sign-in, rotation, logout and the current user, over HTTP."""

import base64
import json
import threading
from datetime import timedelta

import pytest
from django.db import connections
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.accounts.models import User
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)

REGISTER = "/api/v1/auth/register"
TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"


def error_code(response, status):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    return body["error"]["code"]


def sign_in(client, email, password=PASSWORD):
    response = client.post(TOKEN, {"email": email, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["data"]


def bearer(client, access):
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


# --- registration ------------------------------------------------------------------------------


def test_register_returns_the_user_without_any_password_material(api_client):
    response = api_client.post(
        REGISTER, {"email": "New.User@Example.com", "password": "a-long-pass-phrase", "name": "New"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["success"] is True
    assert body["data"]["email"] == "new.user@example.com"
    assert body["data"]["isStaff"] is False
    assert set(body["data"]) == {"id", "email", "name", "isStaff", "dateJoined"}
    assert "password" not in response.content.decode().lower()
    user = User.objects.get(email="new.user@example.com")
    assert user.check_password("a-long-pass-phrase")
    assert user.password != "a-long-pass-phrase"


def test_register_duplicate_email_is_409_case_insensitively(api_client):
    UserFactory(email="taken@example.com")
    response = api_client.post(
        REGISTER, {"email": "TAKEN@example.com", "password": "a-long-pass-phrase"}, format="json"
    )
    assert error_code(response, 409) == "EMAIL_TAKEN"
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1


@pytest.mark.parametrize("password", ["short", "password123", "12345678901", "dupont@example.com"])
def test_register_applies_django_password_validators(api_client, password):
    response = api_client.post(REGISTER, {"email": "dupont@example.com", "password": password}, format="json")
    assert error_code(response, 400) == "VALIDATION_ERROR"
    assert "password" in response.json()["error"]["details"]
    assert not User.objects.filter(email="dupont@example.com").exists()


def test_register_rejects_mass_assignment_of_privileges_and_id(api_client):
    payload = {
        "email": "sneaky@example.com",
        "password": "a-long-pass-phrase",
        "isStaff": True,
        "isSuperuser": True,
        "id": "00000000-0000-0000-0000-000000000001",
    }
    response = api_client.post(REGISTER, payload, format="json")
    assert error_code(response, 400) == "VALIDATION_ERROR"
    assert set(response.json()["error"]["details"]) == {"isStaff", "isSuperuser", "id"}
    assert not User.objects.filter(email="sneaky@example.com").exists()


def test_register_strips_html_from_the_name(api_client):
    response = api_client.post(
        REGISTER,
        {"email": "x@example.com", "password": "a-long-pass-phrase", "name": "<b>Ann</b><script>alert(1)</script>\x00"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["data"]["name"] == "Ann"


def test_user_rows_always_store_lowercase_email():
    user = User.objects.create(email="Mixed@Example.COM")
    user.refresh_from_db()
    assert user.email == "mixed@example.com"


# --- sign in -----------------------------------------------------------------------------------


def test_token_pair_for_valid_credentials_and_me_works_with_it(api_client):
    user = UserFactory(email="ann@example.com", name="Ann")
    tokens = sign_in(api_client, "ANN@example.com")
    assert set(tokens) == {"access", "refresh"}
    response = bearer(api_client, tokens["access"]).get(ME)
    assert response.status_code == 200
    assert response.json()["data"]["id"] == str(user.id)
    assert response.json()["data"]["name"] == "Ann"


def test_wrong_password_and_unknown_email_are_the_same_401(api_client):
    UserFactory(email="ann@example.com")
    wrong = api_client.post(TOKEN, {"email": "ann@example.com", "password": "nope-nope-nope"}, format="json")
    unknown = api_client.post(TOKEN, {"email": "ghost@example.com", "password": "nope-nope-nope"}, format="json")
    assert error_code(wrong, 401) == error_code(unknown, 401) == "INVALID_CREDENTIALS"
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]
    assert wrong["WWW-Authenticate"].startswith("Bearer")


def test_inactive_user_cannot_sign_in(api_client):
    UserFactory(email="gone@example.com", is_active=False)
    response = api_client.post(TOKEN, {"email": "gone@example.com", "password": PASSWORD}, format="json")
    assert error_code(response, 401) == "INVALID_CREDENTIALS"


def test_a_stale_authorization_header_does_not_block_sign_in(api_client):
    UserFactory(email="ann@example.com")
    api_client.credentials(HTTP_AUTHORIZATION="Bearer expired.or.garbage")
    assert sign_in(api_client, "ann@example.com")["access"]


# --- access tokens -----------------------------------------------------------------------------


def test_me_without_token_is_401(api_client):
    assert error_code(api_client.get(ME), 401) == "UNAUTHORIZED"


def test_expired_access_token_is_401():
    token = AccessToken.for_user(UserFactory())
    token.set_exp(lifetime=-timedelta(seconds=1))
    assert error_code(bearer(APIClient(), str(token)).get(ME), 401) == "UNAUTHORIZED"


def test_signing_in_issues_an_access_token_that_lives_exactly_15_minutes(api_client):
    UserFactory(email="ann@example.com")
    access = AccessToken(sign_in(api_client, "ann@example.com")["access"])
    assert access["exp"] - access["iat"] == 15 * 60


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_tampered_access_token_is_401():
    victim, attacker = UserFactory(), UserFactory()
    header, payload, signature = str(AccessToken.for_user(attacker)).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["user_id"] = str(victim.id)
    forged = f"{header}.{_b64(claims)}.{signature}"
    assert error_code(bearer(APIClient(), forged).get(ME), 401) == "UNAUTHORIZED"


def test_alg_none_token_is_401():
    claims = dict(AccessToken.for_user(UserFactory()).payload)
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    assert error_code(bearer(APIClient(), unsigned).get(ME), 401) == "UNAUTHORIZED"


def test_token_signed_with_another_key_is_401(settings):
    from rest_framework_simplejwt.backends import TokenBackend

    claims = dict(AccessToken.for_user(UserFactory()).payload)
    foreign = TokenBackend("HS256", signing_key="some-other-key-" * 4).encode(claims)
    assert error_code(bearer(APIClient(), foreign).get(ME), 401) == "UNAUTHORIZED"


def test_refresh_token_is_not_accepted_as_access_token(api_client):
    UserFactory(email="ann@example.com")
    tokens = sign_in(api_client, "ann@example.com")
    assert error_code(bearer(APIClient(), tokens["refresh"]).get(ME), 401) == "UNAUTHORIZED"


def test_password_change_invalidates_existing_tokens(api_client):
    user = UserFactory(email="ann@example.com")
    tokens = sign_in(api_client, "ann@example.com")
    user.set_password("a-brand-new-pass-phrase")
    user.save()
    assert error_code(bearer(APIClient(), tokens["access"]).get(ME), 401) == "UNAUTHORIZED"
    assert error_code(APIClient().post(REFRESH, {"refresh": tokens["refresh"]}, format="json"), 401) == "UNAUTHORIZED"


def test_deactivated_user_token_is_401():
    user = UserFactory()
    access = str(AccessToken.for_user(user))
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert error_code(bearer(APIClient(), access).get(ME), 401) == "UNAUTHORIZED"


# --- refresh rotation and logout ---------------------------------------------------------------


def test_refresh_rotates_and_the_old_refresh_token_is_dead(api_client):
    UserFactory(email="ann@example.com")
    first = sign_in(api_client, "ann@example.com")
    rotated = api_client.post(REFRESH, {"refresh": first["refresh"]}, format="json")
    assert rotated.status_code == 200, rotated.content
    second = rotated.json()["data"]
    assert second["refresh"] != first["refresh"]
    assert bearer(APIClient(), second["access"]).get(ME).status_code == 200

    reuse = APIClient().post(REFRESH, {"refresh": first["refresh"]}, format="json")
    assert error_code(reuse, 401) == "UNAUTHORIZED"


def test_reusing_a_rotated_refresh_token_revokes_the_whole_session_family(api_client):
    UserFactory(email="ann@example.com")
    stolen = sign_in(api_client, "ann@example.com")["refresh"]
    legit = api_client.post(REFRESH, {"refresh": stolen}, format="json").json()["data"]["refresh"]
    other_device = sign_in(APIClient(), "ann@example.com")["refresh"]

    assert APIClient().post(REFRESH, {"refresh": stolen}, format="json").status_code == 401
    for survivor in (legit, other_device):
        assert APIClient().post(REFRESH, {"refresh": survivor}, format="json").status_code == 401


@pytest.mark.django_db(databases=CONTEXT_DBS, transaction=True)
def test_concurrent_refreshes_with_one_token_only_one_wins():
    UserFactory(email="ann@example.com")
    refresh = sign_in(APIClient(), "ann@example.com")["refresh"]
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def attempt():
        try:
            barrier.wait(timeout=10)
            statuses.append(APIClient().post(REFRESH, {"refresh": refresh}, format="json").status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200, 401, 401, 401]


def test_tampered_or_garbage_refresh_is_401(api_client):
    UserFactory(email="ann@example.com")
    refresh = sign_in(api_client, "ann@example.com")["refresh"]
    head, body, sig = refresh.split(".")
    tampered = f"{head}.{body}.{sig[:-4]}AAAA"
    assert error_code(api_client.post(REFRESH, {"refresh": tampered}, format="json"), 401) == "UNAUTHORIZED"
    assert error_code(api_client.post(REFRESH, {"refresh": "garbage"}, format="json"), 401) == "UNAUTHORIZED"


def test_expired_refresh_is_401(api_client):
    token = RefreshToken.for_user(UserFactory())
    token.set_exp(lifetime=-timedelta(seconds=1))
    assert error_code(api_client.post(REFRESH, {"refresh": str(token)}, format="json"), 401) == "UNAUTHORIZED"


def test_logout_blacklists_the_refresh_token(api_client):
    UserFactory(email="ann@example.com")
    tokens = sign_in(api_client, "ann@example.com")
    response = api_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")
    assert response.status_code == 204
    assert api_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json").status_code == 204  # idempotent
    assert error_code(api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json"), 401) == "UNAUTHORIZED"


def test_logout_with_a_forged_token_is_401(api_client):
    assert error_code(api_client.post(LOGOUT, {"refresh": "a.b.c"}, format="json"), 401) == "UNAUTHORIZED"


# --- the current user --------------------------------------------------------------------------


def test_me_update_changes_the_name_only_and_rejects_privilege_fields():
    user = UserFactory(email="ann@example.com", name="Ann")
    client = bearer(APIClient(), str(AccessToken.for_user(user)))
    response = client.patch(ME, {"name": "  Ann <i>Lee</i> "}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["data"]["name"] == "Ann Lee"

    for field, value in (("isStaff", True), ("id", "00000000-0000-0000-0000-000000000001"), ("email", "x@y.z")):
        response = client.patch(ME, {"name": "Eve", field: value}, format="json")
        assert error_code(response, 400) == "VALIDATION_ERROR"
        assert field in response.json()["error"]["details"]
    user.refresh_from_db()
    assert (user.name, user.is_staff, user.email) == ("Ann Lee", False, "ann@example.com")


def test_me_update_caps_the_name_length():
    client = bearer(APIClient(), str(AccessToken.for_user(UserFactory())))
    response = client.patch(ME, {"name": "x" * 151}, format="json")
    assert error_code(response, 400) == "VALIDATION_ERROR"
