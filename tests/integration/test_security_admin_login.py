"""Finding 5: the admin login is throttled (django-axes) and takes a TOTP code (django-otp)."""

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)

LOGIN = "/admin/login/?next=/admin/"


def _login(client: Client, email: str, password: str, ip: str = "10.1.0.1", **extra):
    return client.post(LOGIN, {"username": email, "password": password, **extra}, REMOTE_ADDR=ip)


def _signed_in(client: Client, ip: str = "10.1.0.1") -> bool:
    return client.get("/admin/", REMOTE_ADDR=ip).status_code == 200


def test_twelve_wrong_admin_passwords_in_a_row_are_throttled(settings):
    settings.AXES_FAILURE_LIMIT = 5
    UserFactory(superuser=True, email="boss@example.com")
    client = Client()
    statuses = [_login(client, "boss@example.com", f"guess-{n}").status_code for n in range(12)]
    assert statuses[:4] == [200] * 4  # the form again, with an error
    assert set(statuses[5:]) == {429}, statuses  # locked out, not answered normally

    # Even the right password from that client is refused until the cool-off ends...
    assert _login(client, "BOSS@example.com ", PASSWORD).status_code == 429
    assert not _signed_in(client)
    # ...while the owner, elsewhere, is not locked out by the stranger.
    owner = Client()
    assert _login(owner, "boss@example.com", PASSWORD, ip="10.2.0.2").status_code == 302
    assert _signed_in(owner, ip="10.2.0.2")


def test_api_sign_in_is_not_counted_by_the_admin_throttle(settings, api_client):
    settings.AXES_FAILURE_LIMIT = 2
    UserFactory(email="ann@example.com")
    for _ in range(3):
        response = api_client.post(
            "/api/v1/auth/token", {"email": "ann@example.com", "password": "nope"}, format="json"
        )
        assert response.status_code == 401
    ok = api_client.post("/api/v1/auth/token", {"email": "ann@example.com", "password": PASSWORD}, format="json")
    assert ok.status_code == 200


def test_with_two_factor_required_a_stolen_password_alone_does_not_open_the_admin(settings):
    settings.ADMIN_REQUIRE_OTP = True
    staff = UserFactory(superuser=True, email="boss@example.com")
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)

    # The owner: password and the code on their phone.
    owner = Client()
    code = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token()
    response = _login(
        owner, "boss@example.com", PASSWORD, ip="10.3.0.3", otp_device=device.persistent_id, otp_token=f"{code:06d}"
    )
    assert response.status_code == 302, response.content[:500]
    assert _signed_in(owner, ip="10.3.0.3")

    # The thief: the password alone, or with a guessed code, opens nothing.
    thief = Client()
    page = _login(thief, "boss@example.com", PASSWORD)
    assert page.status_code == 200 and b'name="otp_token"' in page.content
    assert not _signed_in(thief)
    _login(thief, "boss@example.com", PASSWORD, otp_device=device.persistent_id, otp_token="000000")
    assert not _signed_in(thief)


def test_a_password_session_from_before_two_factor_was_required_is_not_enough(settings, client):
    staff = UserFactory(superuser=True)
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200
    settings.ADMIN_REQUIRE_OTP = True
    assert client.get("/admin/").status_code == 302  # back to the login form: not verified


def test_production_requires_two_factor_for_the_admin_by_default():
    from tests.integration.test_security_settings import production_env, run

    result = run(["-c", "from django.conf import settings; print(settings.ADMIN_REQUIRE_OTP)"], production_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_the_first_device_is_bootstrapped_with_a_static_backup_code(settings, capsys):
    from django.core.management import call_command
    from django_otp.plugins.otp_static.models import StaticDevice

    settings.ADMIN_REQUIRE_OTP = True
    UserFactory(superuser=True, email="boss@example.com")
    call_command("addstatictoken", "boss@example.com")
    code = capsys.readouterr().out.strip()
    device = StaticDevice.objects.get(user__email="boss@example.com")

    client = Client()
    _login(client, "boss@example.com", PASSWORD, otp_device=device.persistent_id, otp_token=code)
    assert _signed_in(client)
