"""Payment gateway: the port, its adapters, and the resilient way to call them."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.payments.gateway.base import (
    UNEXPECTED_STATE,
    GatewayError,
    GatewayUnavailable,
    PaymentDeclined,
    PaymentGateway,
    PermanentGatewayError,
    ProviderKeyInUse,
    ProviderKeySpent,
    ProviderNoAnswer,
    ProviderResult,
    TransientGatewayError,
)
from apps.payments.gateway.resilience import guarded

__all__ = (
    "UNEXPECTED_STATE",
    "GatewayError",
    "GatewayUnavailable",
    "PaymentDeclined",
    "PaymentGateway",
    "PermanentGatewayError",
    "ProviderKeyInUse",
    "ProviderKeySpent",
    "ProviderNoAnswer",
    "ProviderResult",
    "TransientGatewayError",
    "get_gateway",
    "guarded",
)

_instances: dict[tuple, PaymentGateway] = {}


def get_gateway() -> PaymentGateway:
    """The configured adapter (``PAYMENT_GATEWAY``), one per configuration and process."""
    kind = settings.PAYMENT_GATEWAY
    if kind == "fake":
        config = (kind, settings.PAYMENT_FAKE_LATENCY_MS, settings.PAYMENT_FAKE_FAILURE_RATE,
                  settings.PAYMENT_FAKE_SLOW_RATE, settings.PAYMENT_FAKE_KEPT_FAILURE_RATE,
                  settings.PAYMENT_TIMEOUT_SECONDS)  # fmt: skip
    elif kind == "stripe":
        config = (kind, settings.STRIPE_API_KEY, settings.STRIPE_API_BASE, settings.PAYMENT_TIMEOUT_SECONDS)
    else:
        raise ImproperlyConfigured(f"PAYMENT_GATEWAY must be 'fake' or 'stripe', not {kind!r}")
    if config not in _instances:
        _instances[config] = _build(kind)
    return _instances[config]


def _build(kind: str) -> PaymentGateway:
    if kind == "fake":
        from apps.payments.gateway.fake import FakeGateway

        return FakeGateway(
            latency_ms=settings.PAYMENT_FAKE_LATENCY_MS,
            failure_rate=settings.PAYMENT_FAKE_FAILURE_RATE,
            slow_rate=settings.PAYMENT_FAKE_SLOW_RATE,
            kept_failure_rate=settings.PAYMENT_FAKE_KEPT_FAILURE_RATE,
            timeout=settings.PAYMENT_TIMEOUT_SECONDS,
        )
    from apps.payments.gateway.stripe_adapter import StripeGateway

    if not settings.STRIPE_API_KEY:
        raise ImproperlyConfigured("PAYMENT_GATEWAY=stripe needs STRIPE_API_KEY")
    return StripeGateway(
        api_key=settings.STRIPE_API_KEY, api_base=settings.STRIPE_API_BASE, timeout=settings.PAYMENT_TIMEOUT_SECONDS
    )
