"""Rate limits at the edge, counted in the real (test) Redis.

This module doubles as the URLconf of its tests: the project's routes plus two views that opt
into the stricter order/payment scopes the way the orders and payments views do.
"""

import re
import time
import types

import django_ratelimit.core
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from django.urls import include, path
from rest_framework.test import APIClient
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import AccessToken

from shop.api.envelope import ok
from shop.api.ratelimit import RateLimitMiddleware, client_ip, parse_rate
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import PASSWORD, UserFactory


class OrdersProbe(APIView):
    ratelimit_scope = "orders"

    def get(self, request, version=None):
        return ok({})

    def post(self, request, version=None):
        return ok({}, status=201)


class PaymentsProbe(OrdersProbe):
    ratelimit_scope = "payments"


class MisconfiguredProbe(OrdersProbe):
    ratelimit_scope = "everything"


urlpatterns = [
    path(
        "api/<str:version>/probe/",
        include(
            [
                path("orders", OrdersProbe.as_view()),
                path("payments", PaymentsProbe.as_view()),
                path("misconfigured", MisconfiguredProbe.as_view()),
            ]
        ),
    ),
    path("", include("config.urls")),
]

pytestmark = [pytest.mark.django_db(databases=CONTEXT_DBS), pytest.mark.urls(__name__)]

TOKEN = "/api/v1/auth/token"
ME = "/api/v1/auth/me"


@pytest.fixture(autouse=True)
def fixed_window_clock(monkeypatch):
    """Pin the clock django-ratelimit uses to place fixed windows, so that no test can straddle a
    window boundary; a test moves it on by setting ``.now``. Counting still happens in Redis."""
    clock = types.SimpleNamespace(now=int(time.time()))
    monkeypatch.setattr(django_ratelimit.core, "time", types.SimpleNamespace(time=lambda: clock.now))
    return clock


def login(client, email="ann@example.com", password="wrong-password!", ip="10.0.0.1"):
    return client.post(TOKEN, {"email": email, "password": password}, format="json", REMOTE_ADDR=ip)


def assert_limited(response, policy):
    assert response.status_code == 429, response.content
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == "RATE_LIMITED"
    assert body["error"]["details"]["policy"] == policy
    retry_after = int(response["Retry-After"])
    assert retry_after >= 1 and body["error"]["details"]["retryAfter"] == retry_after
    assert f'"{policy}";' in response["RateLimit-Policy"]
    assert re.search(rf'"{policy}";r=0;t=\d+', response["RateLimit"])
    return retry_after


# --- login and registration --------------------------------------------------------------------


def test_a_sign_in_body_in_a_declared_charset_still_counts_against_its_accounts_budget(settings, api_client):
    """Sent as ``application/json; charset=latin-1`` with a byte that is not UTF-8 (a non-breaking space
    after the address, which the view's field trims), the body hid its account from the limiter,
    which read it as UTF-8, while the view read the declared charset and signed in: each address got
    its own guesses at one account, the per-account budget gone. The limiter now reads the body as
    the view does, so the account's budget refuses the guess that exceeds it, whichever address sent it."""
    settings.RATELIMIT_LOGIN_ACCOUNT = "3/h"
    UserFactory(email="victim@example.com")
    latin1 = "application/json; charset=latin-1"

    def guess(password: str, ip: str):
        body = f'{{"email": "victim@example.com\u00a0", "password": "{password}"}}'.encode("latin-1")
        return api_client.post(TOKEN, body, content_type=latin1, REMOTE_ADDR=ip)

    for n in range(3):
        assert guess("wrong-password!", f"10.8.0.{n}").status_code == 401
    assert_limited(guess(PASSWORD, "10.8.1.1"), "login-account")


def test_sixth_login_attempt_in_15_minutes_is_429_with_retry_after(settings, api_client):
    settings.RATELIMIT_LOGIN = "5/15m"
    UserFactory(email="ann@example.com")
    for _ in range(5):
        assert login(api_client).status_code == 401
    sixth = login(api_client, password=PASSWORD)  # even the right password: the budget is spent
    # Same IP and same account: both policies are spent; the one with the longer wait is reported.
    policy = sixth.json()["error"]["details"]["policy"]
    assert policy in {"login-ip", "login-account-client"}
    assert assert_limited(sixth, policy) <= 15 * 60
    assert '"login-ip";q=5;w=900' in sixth["RateLimit-Policy"]
    assert '"login-account-client";q=5;w=900' in sixth["RateLimit-Policy"]


def test_login_limit_per_account_holds_across_client_ips_at_its_slower_rate(settings, api_client):
    settings.RATELIMIT_LOGIN = "5/15m"
    settings.RATELIMIT_LOGIN_ACCOUNT = "8/h"
    for n in range(8):
        assert login(api_client, ip=f"10.0.1.{n}").status_code == 401
    assert_limited(login(api_client, ip="10.0.1.99"), "login-account")
    assert login(api_client, email="bob@example.com", ip="10.0.1.100").status_code == 401


def test_login_limit_per_ip_holds_across_emails(settings, api_client):
    settings.RATELIMIT_LOGIN = "5/15m"
    for n in range(5):
        assert login(api_client, email=f"user{n}@example.com").status_code == 401
    assert_limited(login(api_client, email="fresh@example.com"), "login-ip")
    assert login(api_client, email="fresh@example.com", ip="10.9.9.9").status_code == 401


def test_registration_is_limited_per_ip(settings, api_client):
    settings.RATELIMIT_REGISTER = "2/h"
    for n in range(2):
        payload = {"email": f"new{n}@example.com", "password": "a-long-pass-phrase"}
        assert api_client.post("/api/v1/auth/register", payload, format="json").status_code == 201
    third = api_client.post(
        "/api/v1/auth/register", {"email": "new3@example.com", "password": "a-long-pass-phrase"}, format="json"
    )
    assert_limited(third, "register")


# --- the default limit on every API view -------------------------------------------------------


def test_authenticated_users_each_get_their_own_budget(settings):
    settings.RATELIMIT_USER = "3/d"
    ann, bob = APIClient(), APIClient()
    ann.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(UserFactory())}")
    bob.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(UserFactory())}")
    for _ in range(3):
        response = ann.get(ME)
        assert response.status_code == 200
    assert response["RateLimit-Policy"] == '"user";q=3;w=86400'
    assert re.fullmatch(r'"user";r=0;t=\d+', response["RateLimit"])
    assert_limited(ann.get(ME), "user")
    assert bob.get(ME).status_code == 200


def test_anonymous_clients_are_limited_per_ip_even_when_every_request_is_a_401(settings):
    settings.RATELIMIT_ANON = "3/d"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer forged.token.value")
    for _ in range(3):
        assert client.get(ME).status_code == 401
    assert_limited(client.get(ME), "anon")
    assert APIClient().get(ME, REMOTE_ADDR="10.2.2.2").status_code == 401


def test_order_and_payment_writes_have_their_own_stricter_limits(settings):
    settings.RATELIMIT_ORDERS = "2/d"
    settings.RATELIMIT_PAYMENTS = "1/d"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(UserFactory())}")
    for _ in range(2):
        assert client.post("/api/v1/probe/orders", {}, format="json").status_code == 201
    assert_limited(client.post("/api/v1/probe/orders", {}, format="json"), "orders")
    assert client.get("/api/v1/probe/orders").status_code == 200  # reads only count for the default limit

    assert client.post("/api/v1/probe/payments", {}, format="json").status_code == 201
    limited = client.post("/api/v1/probe/payments", {}, format="json")
    assert_limited(limited, "payments")
    assert '"user";q=' in limited["RateLimit-Policy"]  # the default limit is evaluated too


def test_the_window_rolls_over_when_retry_after_says_and_the_budget_is_whole_again(settings, fixed_window_clock):
    settings.RATELIMIT_ORDERS = "2/m"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(UserFactory())}")
    for _ in range(2):
        assert client.post("/api/v1/probe/orders", {}, format="json").status_code == 201
    retry_after = assert_limited(client.post("/api/v1/probe/orders", {}, format="json"), "orders")

    fixed_window_clock.now += retry_after - 1  # still the old window: still limited
    assert_limited(client.post("/api/v1/probe/orders", {}, format="json"), "orders")
    fixed_window_clock.now += 1  # the announced moment: a new window with a whole budget
    for _ in range(2):
        assert client.post("/api/v1/probe/orders", {}, format="json").status_code == 201
    assert_limited(client.post("/api/v1/probe/orders", {}, format="json"), "orders")


def test_an_unknown_scope_is_a_configuration_error(api_client):
    with pytest.raises(ImproperlyConfigured, match="ratelimit_scope"):
        api_client.get("/api/v1/probe/misconfigured")


def test_health_metrics_and_admin_are_never_limited(settings, client):
    settings.RATELIMIT_ANON = "1/d"
    for _ in range(3):
        assert client.get("/health/live").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/admin/login/").status_code == 200
    assert "RateLimit" not in client.get("/health/live")
    assert client.get(ME).status_code == 401
    assert client.get(ME).status_code == 429


def test_ratelimit_enabled_false_switches_every_limit_off(settings, api_client):
    settings.RATELIMIT_ENABLE = False
    settings.RATELIMIT_LOGIN = "1/d"
    settings.RATELIMIT_ANON = "1/d"
    responses = [login(api_client) for _ in range(4)] + [api_client.get(ME) for _ in range(3)]
    assert [r.status_code for r in responses] == [401] * 7
    assert all("RateLimit" not in r for r in responses)


def test_redis_down_fails_closed_for_login_and_open_for_the_rest(settings, api_client):
    settings.RATELIMIT_LOGIN = "5/15m"
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    refused = login(api_client)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert int(refused["Retry-After"]) > 0
    assert api_client.get(ME).status_code == 401  # served (unlimited), not 429/503


# --- client IP ---------------------------------------------------------------------------------


def test_x_forwarded_for_is_ignored_without_trusted_proxies(settings):
    settings.RATELIMIT_ANON = "2/d"
    client = APIClient()
    for n in range(2):
        assert client.get(ME, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code == 401
    assert_limited(client.get(ME, HTTP_X_FORWARDED_FOR="203.0.113.77"), "anon")


def test_behind_one_trusted_proxy_each_forwarded_client_has_its_own_budget(settings):
    settings.RATELIMIT_ANON = "1/d"
    settings.TRUSTED_PROXY_COUNT = 1
    client = APIClient()
    assert client.get(ME, HTTP_X_FORWARDED_FOR="203.0.113.1").status_code == 401
    assert client.get(ME, HTTP_X_FORWARDED_FOR="203.0.113.2").status_code == 401
    # A client cannot escape by prepending addresses: the proxy's entry (rightmost) counts.
    assert_limited(client.get(ME, HTTP_X_FORWARDED_FOR="198.51.100.9, 203.0.113.1"), "anon")


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.5", "10.0.0.1"),
        (1, "203.0.113.5", "203.0.113.5"),
        (1, "1.1.1.1, 203.0.113.5", "203.0.113.5"),
        (2, "1.1.1.1, 203.0.113.5, 10.0.0.2", "203.0.113.5"),
        (2, "203.0.113.5", "203.0.113.5"),  # fewer hops than configured: the furthest one known
        (1, "not-an-ip", "10.0.0.1"),
        (1, "", "10.0.0.1"),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_ip_resolution(settings, proxies, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


# --- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "expected"), [("5/15m", (5, 900)), ("100/m", (100, 60)), ("10/h", (10, 3600)), ("1/2d", (1, 172800))]
)
def test_rates_use_django_ratelimit_syntax(rate, expected):
    assert parse_rate(rate) == expected


@pytest.mark.parametrize("rate", ["", "five/m", "5/x", "5", "/m", "5/0m", "5 per minute"])
def test_a_bad_rate_stops_the_process_at_startup(settings, rate):
    settings.RATELIMIT_ORDERS = rate
    with pytest.raises(ImproperlyConfigured):
        RateLimitMiddleware(lambda request: None)


# --- finding 2: the login limit cannot be sidestepped nor turned against the owner --------------


def test_login_throttle_counts_the_email_the_view_authenticates_whatever_the_key_spelling(settings, api_client):
    """``{"EMAIL": …}`` was authenticated but never counted: now it spends the account's budget."""
    settings.RATELIMIT_LOGIN_ACCOUNT = "3/h"
    UserFactory(email="victim@example.com")
    spellings = [
        {"EMAIL": "victim@example.com", "PASSWORD": "guess-1"},
        {"email": " Victim@Example.COM ", "password": "guess-2"},
        {"EMAIL": "VICTIM@example.com", "Password": "guess-3"},
    ]
    for n, body in enumerate(spellings):
        response = api_client.post(TOKEN, body, format="json", REMOTE_ADDR=f"10.7.0.{n}")
        assert response.status_code in (400, 401), response.content
    guess = api_client.post(
        TOKEN, {"EMAIL": "victim@example.com", "PASSWORD": "x"}, format="json", REMOTE_ADDR="10.7.1.1"
    )
    assert_limited(guess, "login-account")


@pytest.mark.parametrize(
    "body",
    [
        {"email": "decoy@example.com", "EMAIL": "victim@example.com", "password": "guess"},
        {"email": "decoy@example.com", "e_mail": "victim@example.com", "password": "guess"},
        {"email": "victim@example.com", "password": "guess", "PASSWORD": "guess-2"},
    ],
)
def test_login_with_duplicate_or_case_variant_keys_is_400_and_authenticates_nobody(api_client, body):
    UserFactory(email="victim@example.com")
    response = api_client.post(TOKEN, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "MALFORMED_REQUEST"


def test_exact_duplicate_json_keys_are_400(api_client):
    raw = b'{"email": "decoy@example.com", "email": "victim@example.com", "password": "guess"}'
    response = api_client.post(TOKEN, raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MALFORMED_REQUEST"


def test_a_stranger_exhausting_the_limit_does_not_lock_the_owner_out(settings, api_client):
    settings.RATELIMIT_LOGIN = "5/15m"
    UserFactory(email="owner@example.com")
    for _ in range(5):
        assert login(api_client, email="owner@example.com", ip="203.0.113.9").status_code == 401
    # The stranger is stopped by whichever per-client limit fills first: both count these five
    # attempts, but each key has its own window phase, so one may have just rolled over.
    stopped = login(api_client, email="owner@example.com", ip="203.0.113.9")
    assert stopped.status_code == 429, stopped.content
    assert stopped.json()["error"]["details"]["policy"] in {"login-ip", "login-account-client"}

    owner = login(APIClient(), email="owner@example.com", password=PASSWORD, ip="198.51.100.7")
    assert owner.status_code == 200, owner.content
