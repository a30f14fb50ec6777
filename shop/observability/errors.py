"""Error reporting with sentry-sdk: every event names its correlation id, release and
environment, and carries no tokens, passwords or card data.

Three layers: an event processor first collects the values found under sensitive keys
(request body, headers, local variables such as ``password``) and blanks them wherever else
they appear (an exception message quoting a password); sentry-sdk's ``EventScrubber`` blanks
the sensitive keys themselves; ``before_send`` blanks secret-looking substrings anywhere
(payment tokens, JWTs, bearer credentials, card-number-like digit runs).
"""

import re
from typing import Any

import sentry_sdk
from sentry_sdk.scope import add_global_event_processor
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

FILTERED = "[Filtered]"
SENSITIVE_KEYS = [
    "access",
    "refresh",
    "jwt",
    "card",
    "card_number",
    "cardnumber",
    "cvc",
    "cvv",
    "pan",
    "stripe_signature",
    "http_authorization",
    "http_cookie",
]
_SECRETS = re.compile(
    r"(?:\b(?:tok|pm|pi|ch|sk|rk|whsec|seti|src)_[A-Za-z0-9_]+)"  # provider tokens and keys
    r"|(?:\beyJ[\w-]+\.[\w-]+\.[\w-]+)"  # JWTs
    r"|(?:(?i:bearer)\s+\S+)"
    r"|(?:\b(?:\d[ -]?){12,18}\d\b)"  # card-number-like digit runs (13-19 digits)
)


def scrub_text(value: str) -> str:
    return _SECRETS.sub(FILTERED, value)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def _is_sensitive(key: str) -> bool:
    lowered = key.lower().replace("-", "_")
    return lowered in _DENYLIST or any(word in lowered for word in ("password", "token", "secret", "card"))


def _harvest(value: Any, found: set[str], sensitive: bool = False) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _harvest(item, found, sensitive or (isinstance(key, str) and _is_sensitive(key)))
    elif isinstance(value, list | tuple):
        for item in value:
            _harvest(item, found, sensitive)
    elif sensitive and isinstance(value, str) and len(value.strip("'\"")) >= 4:
        found.add(value.strip("'\""))  # local variables arrive repr()'d


def _replace(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, FILTERED)
        return value
    if isinstance(value, dict):
        return {key: _replace(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_replace(item, secrets) for item in value]
    return value


def mask_known_secrets(event: dict, hint: dict) -> dict:
    """Blank every value seen under a sensitive key wherever else it occurs in the event."""
    found: set[str] = set()
    _harvest(event, found)
    return _replace(event, sorted(found, key=len, reverse=True)) if found else event


def before_send(event: dict, hint: dict) -> dict:
    from shop.observability.context import get_correlation_id

    cid = get_correlation_id()
    if cid:
        event.setdefault("tags", {})["correlation_id"] = cid
    return _scrub(event)


_DENYLIST = {key.lower() for key in [*DEFAULT_DENYLIST, *SENSITIVE_KEYS]}
_processor_added = False


def init(dsn: str, *, environment: str, release: str, traces_sample_rate: float = 0.0, transport=None) -> None:
    """The Django and Celery integrations switch themselves on; no personal data is sent."""
    global _processor_added
    if not _processor_added:
        add_global_event_processor(mask_known_secrets)
        _processor_added = True
    options = {}
    if transport is not None:
        options["transport"] = transport
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        event_scrubber=EventScrubber(denylist=[*DEFAULT_DENYLIST, *SENSITIVE_KEYS], recursive=True),
        before_send=before_send,
        before_breadcrumb=lambda crumb, hint: _scrub(crumb),
        **options,
    )


def configure() -> None:
    from django.conf import settings
    from django.utils.module_loading import import_string

    if not settings.SENTRY_DSN:
        return
    init(
        settings.SENTRY_DSN,
        environment=settings.DJANGO_ENV,
        release=settings.SENTRY_RELEASE,
        traces_sample_rate=settings.SENTRY_TRACES_SAMPLE_RATE,
        transport=import_string(settings.SENTRY_TRANSPORT) if settings.SENTRY_TRANSPORT else None,
    )
