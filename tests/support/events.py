"""Deterministic, synchronous delivery for tests of business flows (no broker involved): the real
relay claims and the real inbox, in this process.

Integration tests of the plumbing itself use a real worker instead (see tests/integration).
"""

from contextlib import contextmanager

from django.conf import settings

from shop.events import bus, inbox, registry, relay


def _handle_now(sub, wire):
    inbox.handle(sub.consumer, wire)


def drain(max_rounds: int = 50) -> int:
    """Deliver every pending outbox row, including the events those handlers publish.

    Handler errors propagate, so a test sees them. In ``transaction=True`` tests the on-commit
    fast path sends rows to the broker before ``drain`` sees them; set
    ``settings.EVENTS_FAST_PATH = False`` there (pytest-django's ``settings`` fixture).
    """
    total = 0
    for _ in range(max_rounds):
        sent = sum(relay.dispatch(alias, send=_handle_now) for alias in settings.CONTEXTS)
        total += sent
        if not sent:
            return total
    raise RuntimeError("drain() did not settle: an event loop keeps publishing")


@contextmanager
def registrations_kept():
    """Event types, upcasters and subscriptions registered inside the block are forgotten when it
    ends (and any the block replaced come back), so a test's throwaway registrations cannot leak
    into other tests or the contract test."""
    tables = (registry._specs, registry._upcasters, registry._validators, registry._latest)
    saved_registry = [(table, dict(table)) for table in tables]
    saved_bus = ({k: list(v) for k, v in bus._by_type.items()}, dict(bus._by_consumer))
    try:
        yield
    finally:
        for table, contents in saved_registry:
            table.clear(), table.update(contents)
        bus._by_type.clear(), bus._by_type.update(saved_bus[0])
        bus._by_consumer.clear(), bus._by_consumer.update(saved_bus[1])


@contextmanager
def watching(*event_types: str, context: str):
    """A consumer of ``event_types`` for the block, as a future one would subscribe: an event
    nobody subscribes to is not queued, so a test that reads what was published (outbox rows)
    of such an event has it watched. The subscriptions are removed afterwards."""
    with registrations_kept():
        for event_type in event_types:
            bus.subscriber(event_type, consumer=f"tests.watching.{event_type}", context=context)(lambda envelope: None)
        yield
