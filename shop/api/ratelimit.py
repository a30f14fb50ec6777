"""Rate limits for every API view, counted in Redis so all web processes share one budget.

How a view is limited (nothing to do for the default):

* every DRF view: ``RATELIMIT_USER`` per authenticated user (the ``user_id`` of a valid access
  token), ``RATELIMIT_ANON`` per client IP otherwise;
* a view with ``ratelimit_scope = "orders" | "payments"``: additionally that scope's stricter
  limit on write methods; ``"register"`` limits POSTs per client IP; ``"login"`` per client
  IP, per account *and client* (``RATELIMIT_LOGIN``), and per account from anywhere with a
  slower budget (``RATELIMIT_LOGIN_ACCOUNT``). The account is the email the view will
  authenticate, read with the API's own parser and normalised the same way, so no spelling
  of the key (``EMAIL``) or of the address (`` Victim@X ``) escapes its counter. Keyed by
  account and client, an attacker who exhausts their own budget against a victim's address
  does not lock the victim out; only the slow global budget is shared.

Why a middleware and not a DRF throttle: DRF runs throttles after authentication and
permissions, so a flood of requests with bad tokens (401) or on forbidden resources (403)
would never be counted. ``process_view`` sees the resolved DRF view class (``view.cls``)
before any of that runs. Django views (admin, health, metrics) are never limited here.

Counting is django-ratelimit's fixed window (``cache.add`` + atomic ``INCR``) on the default
cache, which is Redis whenever ``REDIS_URL`` is set. If Redis is unreachable, login and
registration fail closed (503: unlimited password guessing is worse than a short outage of
sign-in) and everything else fails open (the API stays up; readiness reports Redis down).

Responses carry the IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers), e.g.
``RateLimit-Policy: "user";q=100;w=60`` and ``RateLimit: "user";r=99;t=42``; a 429 adds
``Retry-After``.
"""

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import structlog
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, RequestDataTooBig
from django.http import HttpRequest, JsonResponse, RawPostDataException
from django_ratelimit.core import get_usage
from django_redis.exceptions import ConnectionInterrupted
from prometheus_client import Counter
from redis.exceptions import RedisError
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from shop.api.envelope import error_body
from shop.api.parsers import UnsafeJSON, decoded, loads_snake_case

logger = structlog.get_logger("shop.ratelimit")
rate_limited_total = Counter("http_rate_limited_total", "Requests refused by a rate limit", ["policy"])

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
POST_ONLY = frozenset({"POST"})
RATE_SETTINGS = (
    "RATELIMIT_USER",
    "RATELIMIT_ANON",
    "RATELIMIT_LOGIN",
    "RATELIMIT_LOGIN_ACCOUNT",
    "RATELIMIT_REGISTER",
    "RATELIMIT_ORDERS",
    "RATELIMIT_PAYMENTS",
)
_CACHE_ERRORS = (ConnectionInterrupted, RedisError, OSError)
_RATE = re.compile(r"^(\d+)/(\d*)([smhd])$")
_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_FAIL_CLOSED_RETRY_SECONDS = 5


# --- client identity -------------------------------------------------------------------------


def client_ip(request: HttpRequest) -> str:
    """The client's address, trusting exactly ``TRUSTED_PROXY_COUNT`` proxies in front of us.

    Each trusted proxy appends the address it received the request from to X-Forwarded-For,
    so the client is the N-th entry from the right; anything further left was written by the
    client and is ignored. With no trusted proxy (the default) the header is not read at all.
    """
    remote = request.META.get("REMOTE_ADDR") or ""
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if forwarded:
            candidate = forwarded[-hops] if len(forwarded) >= hops else forwarded[0]
            if _is_ip(candidate):
                return candidate
    return remote


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _ip_key(request: HttpRequest) -> str:
    """IPv6 clients are counted per /64: one subscriber usually controls a whole /64."""
    ip = client_ip(request)
    if not _is_ip(ip):
        return "ip:unknown"
    if ":" in ip:
        ip = str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address)
    return f"ip:{ip}"


_jwt = JWTAuthentication()


def _token_user_id(request: HttpRequest) -> str | None:
    """The user id of a *valid* access token (signature and expiry checked, no DB query)."""
    try:
        header = _jwt.get_header(request)
        raw = _jwt.get_raw_token(header) if header else None
        if raw is None:
            return None
        token = _jwt.get_validated_token(raw)
    except (AuthenticationFailed, TokenError):
        return None
    user_id = token.get(jwt_settings.USER_ID_CLAIM)
    return str(user_id) if user_id else None


def _user_key(request: HttpRequest) -> str | None:
    if not hasattr(request, "_ratelimit_user_id"):
        request._ratelimit_user_id = _token_user_id(request)
    return f"user:{request._ratelimit_user_id}" if request._ratelimit_user_id else None


def _anon_key(request: HttpRequest) -> str | None:
    return None if _user_key(request) else _ip_key(request)


def _user_or_ip_key(request: HttpRequest) -> str:
    return _user_key(request) or _ip_key(request)


def _login_account(request: HttpRequest) -> str | None:
    """The normalised email the sign-in view will authenticate (None: the view answers 400).

    Parsed once per request with the API's own parser (same charset, same key folding, same
    refusals of ambiguous keys) and normalised like ``accounts.models.normalize_email``. A body it
    cannot read, the view cannot read either (400).
    """
    if not hasattr(request, "_ratelimit_account"):
        try:
            payload = loads_snake_case(decoded(request.body or b"{}", request.encoding))
        except (UnsafeJSON, ValueError, LookupError, RequestDataTooBig, RawPostDataException):
            payload = None
        email = payload.get("email") if isinstance(payload, dict) else None
        valid = isinstance(email, str) and email.strip()
        request._ratelimit_account = email.strip().lower()[:320] if valid else None
    return request._ratelimit_account


def _login_account_client_key(request: HttpRequest) -> str | None:
    account = _login_account(request)
    return f"email:{account}|{_ip_key(request)}" if account else None


def _login_account_key(request: HttpRequest) -> str | None:
    account = _login_account(request)
    return f"email:{account}" if account else None


# --- rules -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    name: str  # the policy name clients see, and the counter's group
    setting: str  # the settings attribute holding the rate, django-ratelimit's "N/period"
    key: Callable[[HttpRequest], str | None]  # None: the rule does not apply to this request
    methods: frozenset[str] | None = None  # None: every method
    fail_closed: bool = False


DEFAULT_RULES = (
    Rule("user", "RATELIMIT_USER", _user_key),
    Rule("anon", "RATELIMIT_ANON", _anon_key),
)
SCOPES: dict[str, tuple[Rule, ...]] = {
    "login": (
        Rule("login-ip", "RATELIMIT_LOGIN", _ip_key, POST_ONLY, fail_closed=True),
        Rule("login-account-client", "RATELIMIT_LOGIN", _login_account_client_key, POST_ONLY, fail_closed=True),
        Rule("login-account", "RATELIMIT_LOGIN_ACCOUNT", _login_account_key, POST_ONLY, fail_closed=True),
    ),
    "register": (Rule("register", "RATELIMIT_REGISTER", _ip_key, POST_ONLY, fail_closed=True),),
    "orders": (Rule("orders", "RATELIMIT_ORDERS", _user_or_ip_key, WRITE_METHODS),),
    "payments": (Rule("payments", "RATELIMIT_PAYMENTS", _user_or_ip_key, WRITE_METHODS),),
}


@lru_cache(maxsize=64)
def parse_rate(rate: str) -> tuple[int, int]:
    """``"5/15m"`` → (5, 900). Stricter than django-ratelimit's parser: garbage is an error."""
    match = _RATE.match(str(rate).strip())
    if not match:
        raise ImproperlyConfigured(f"Invalid rate {rate!r}: use N/period, e.g. 100/m or 5/15m.")
    count, multiplier, unit = match.groups()
    seconds = _PERIOD_SECONDS[unit] * int(multiplier or 1)
    if seconds <= 0:
        raise ImproperlyConfigured(f"Invalid rate {rate!r}: the period must be positive.")
    return int(count), seconds


def validate_rates() -> None:
    for name in RATE_SETTINGS:
        parse_rate(getattr(settings, name))


def rules_for(view_class: type, method: str) -> list[Rule]:
    scope = getattr(view_class, "ratelimit_scope", None)
    if scope is not None and scope not in SCOPES:
        raise ImproperlyConfigured(f"{view_class.__name__}.ratelimit_scope={scope!r}; known: {sorted(SCOPES)}")
    scoped = SCOPES.get(scope, ()) if scope else ()
    return [rule for rule in (*DEFAULT_RULES, *scoped) if rule.methods is None or method in rule.methods]


# --- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    rule: Rule
    limit: int
    window: int
    count: int
    reset: int

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit

    @property
    def remaining(self) -> int:
        return max(self.limit - self.count, 0)


def _count(request: HttpRequest, rule: Rule, key: str) -> Usage | None:
    """Increment and read one counter; None when the cache cannot answer."""
    rate = getattr(settings, rule.setting)
    limit, window = parse_rate(rate)
    try:
        # RATELIMIT_FAIL_OPEN makes get_usage return None (not "limited") on a failed INCR.
        usage = get_usage(request, group=rule.name, key=lambda _group, _request: key, rate=rate, increment=True)
    except _CACHE_ERRORS:
        usage = None
    if usage is None:
        return None
    # django-ratelimit's window still counts at its end second (time_left 0): the next one starts a
    # second later, which is when a client may retry.
    return Usage(rule, limit, window, usage["count"], max(usage["time_left"], 0) + 1)


def _headers(usages: list[Usage]) -> dict[str, str]:
    return {
        "RateLimit-Policy": ", ".join(f'"{u.rule.name}";q={u.limit};w={u.window}' for u in usages),
        "RateLimit": ", ".join(f'"{u.rule.name}";r={u.remaining};t={u.reset}' for u in usages),
    }


def _too_many(usages: list[Usage], exceeded: list[Usage]) -> JsonResponse:
    worst = max(exceeded, key=lambda u: u.reset)
    retry_after = worst.reset
    for usage in exceeded:
        rate_limited_total.labels(usage.rule.name).inc()
    logger.info("rate_limited", policy=worst.rule.name, retry_after=retry_after)
    response = JsonResponse(
        error_body(
            "RATE_LIMITED",
            f"Too many requests; retry in {retry_after} seconds.",
            {"policy": worst.rule.name, "retryAfter": retry_after},
        ),
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    for name, value in _headers(usages).items():
        response[name] = value
    return response


def _unavailable() -> JsonResponse:
    response = JsonResponse(
        error_body("SERVICE_UNAVAILABLE", "Sign-in is temporarily unavailable; retry shortly."), status=503
    )
    response["Retry-After"] = str(_FAIL_CLOSED_RETRY_SECONDS)
    return response


class RateLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        validate_rates()  # a typo in RATELIMIT_* stops the process at boot, not at request time

    def __call__(self, request):
        response = self.get_response(request)
        for name, value in getattr(request, "_ratelimit_headers", {}).items():
            if name not in response:
                response[name] = value
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        view_class = getattr(view_func, "cls", None)
        if not settings.RATELIMIT_ENABLE or not (isinstance(view_class, type) and issubclass(view_class, APIView)):
            return None
        if hasattr(request, "_ratelimit_headers"):
            # The same request run again on fresh database sessions (``DatabaseRetryMiddleware``): it
            # was counted, and let through, by its first attempt. Counted again, a re-run spent two
            # units of every budget, and near a budget's edge answered 429 instead of its result.
            return None
        usages: list[Usage] = []
        for rule in rules_for(view_class, request.method):
            key = rule.key(request)
            if key is None:
                continue
            usage = _count(request, rule, key)
            if usage is not None:
                usages.append(usage)
            elif rule.fail_closed:
                logger.warning("ratelimit_unavailable", policy=rule.name, outcome="refused")
                return _unavailable()
            else:
                logger.warning("ratelimit_unavailable", policy=rule.name, outcome="allowed")
        exceeded = [usage for usage in usages if usage.exceeded]
        if exceeded:
            return _too_many(usages, exceeded)
        request._ratelimit_headers = _headers(usages) if usages else {}
        return None
