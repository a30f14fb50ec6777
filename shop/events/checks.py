"""System checks (``manage.py check``, run at startup): mistakes that would lose or stall events."""

from django.conf import settings
from django.core import checks

from shop.events import bus, registry
from shop.events.inbox import MAX_RETRY_DELAY_SECONDS


@checks.register("shop_events")
def check_subscriptions(app_configs=None, **kwargs):
    """A subscription to a type nobody registered would never fire (a typo, or a removed event):
    an error, so ``manage.py check``, ``migrate_all`` and the server refuse to start with it."""
    known = {spec.type for spec in registry.all_specs()}
    return [
        checks.Error(
            f"Subscriber {sub.consumer!r} listens to {sub.event_type!r}, which no events.py registers.",
            hint="Subscribe with the publisher's event-type constant from its events.py.",
            id="shop_events.E003",
        )
        for sub in bus.all_subscribers()
        if sub.event_type not in known
    ]


@checks.register("shop_events")
def check_upcasters(app_configs=None, **kwargs):
    """Every version after the first needs an upcaster from the one before, or old events fail."""
    return [
        checks.Error(
            f"{spec.type} v{spec.version} has no upcaster from v{spec.version - 1}.",
            hint="Decorate a function with @register_upcaster(type, from_version) in the publisher's events.py.",
            id="shop_events.E001",
        )
        for spec in registry.all_specs()
        if spec.version > 1 and not registry.has_upcaster(spec.type, spec.version - 1)
    ]


@checks.register("shop_events")
def check_visibility_timeout(app_configs=None, **kwargs):
    """Redis redelivers unacked messages after the visibility timeout, even ones merely waiting for
    their retry countdown: a timeout shorter than the longest wait delivers them twice, early."""
    if not getattr(settings, "CELERY_BROKER_URL", "").startswith(("redis://", "rediss://")):
        return []
    timeout = (getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}).get("visibility_timeout", 3600)
    needed = MAX_RETRY_DELAY_SECONDS + getattr(settings, "CELERY_TASK_TIME_LIMIT", 0)
    if timeout <= needed:
        return [
            checks.Error(
                f"Broker visibility_timeout ({timeout}s) must exceed the longest retry wait plus the task "
                f"time limit ({needed}s).",
                id="shop_events.E002",
            )
        ]
    return []
