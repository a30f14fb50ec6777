"""Who listens to what. Each subscription is a (consumer, event type, context) triple.

A consumer name is stable forever: it keys the inbox, so renaming one replays history.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from shop.events.envelope import Envelope


@dataclass(frozen=True)
class Subscriber:
    consumer: str
    event_type: str
    context: str
    handler: Callable[..., None]
    # Work that must not hold the context's database: a remote call whose answer the handler
    # records. It runs before the delivery's transaction, holding no connection of the context, and
    # the handler gets its result: ``handler(envelope, prepared)``.
    prepare: Callable[[Envelope], Any] | None = None

    @property
    def queue(self) -> str:
        return self.context


_by_type: dict[str, list[Subscriber]] = {}
_by_consumer: dict[str, Subscriber] = {}


def _qualified(fn) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def subscriber(event_type: str, *, consumer: str, context: str, prepare: Callable[[Envelope], Any] | None = None):
    """Register ``fn(envelope)`` to run in ``context``'s database and queue for each ``event_type``;
    with ``prepare``, ``fn(envelope, prepare(envelope))``, ``prepare`` outside the transaction."""

    if context not in settings.CONTEXTS:
        raise ValueError(f"Subscriber {consumer!r}: unknown context {context!r} (one of {settings.CONTEXTS})")

    def decorator(fn):
        existing = _by_consumer.get(consumer)
        if existing is not None and _qualified(existing.handler) != _qualified(fn):
            raise ValueError(f"Consumer name {consumer!r} is already taken by {_qualified(existing.handler)}")
        sub = Subscriber(consumer=consumer, event_type=event_type, context=context, handler=fn, prepare=prepare)
        _by_consumer[consumer] = sub
        _by_type[event_type] = [s for s in _by_type.get(event_type, []) if s.consumer != consumer] + [sub]
        return fn

    return decorator


def subscribers_for(event_type: str) -> list[Subscriber]:
    return list(_by_type.get(event_type, ()))


def subscriber_by_consumer(consumer: str) -> Subscriber:
    try:
        return _by_consumer[consumer]
    except KeyError:
        raise LookupError(f"No subscriber named {consumer!r}") from None


def consumer_exists(consumer: str) -> bool:
    return consumer in _by_consumer


def all_subscribers() -> list[Subscriber]:
    return sorted(_by_consumer.values(), key=lambda s: s.consumer)
