"""Publishing: the event row commits with the state change, or not at all.

Why not ``delay_on_commit``? It publishes *after* the commit, so a crash (or a broker
outage) between commit and publish loses the event forever. Here publication is a row in
the same transaction; ``on_commit`` only *speeds up* delivery, and the beat sweeper
delivers whatever a crash, a broker outage or a broker restart left undelivered
(``relay.sweep``: a row stays owed until every subscriber's inbox has it).
"""

import json
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from opentelemetry.trace import SpanKind

from shop.db import insert_row
from shop.events import bus, registry
from shop.events.envelope import Envelope
from shop.events.store import outbox_model
from shop.observability import metrics, tracing
from shop.observability.context import get_causation_id, get_correlation_id


class NotInTransaction(RuntimeError):
    """publish() was called outside ``transaction.atomic(using=alias)``."""


def publish(
    event_type: str, data: dict[str, Any], *, aggregate_id: Any, using: str, version: int | None = None
) -> Envelope:
    """Write ``event_type`` to ``using``'s outbox, in the caller's transaction on that alias.

    Raises (and so rolls the caller's transaction back) when there is no transaction, when the
    type/version is unregistered, or when ``data`` does not match its schema.

    An event nobody subscribes to is validated and counted, and queued nowhere: the outbox is a
    delivery queue, not a history (orders keep theirs in the event store, payments in the
    ledger, both written in the same transaction), and a row that no relay would ever send was
    a fifth of the outbox's inserts per checkout. Otherwise, with the fast path on, it is sent
    right after the commit, and the sweeper looks at it again only
    ``EVENTS_REDELIVER_AFTER_SECONDS`` later, to confirm that it arrived (or re-send it): no
    write on the hot path beyond the row itself.
    """
    if not transaction.get_connection(using).in_atomic_block:
        raise NotInTransaction(f"publish({event_type!r}) must run inside transaction.atomic(using={using!r})")
    version = version or registry.latest_version(event_type)
    plain = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    registry.validate(event_type, version, plain)
    with tracing.span(f"publish {event_type}", kind=SpanKind.PRODUCER, **{"messaging.destination.name": using}):
        envelope = Envelope(
            type=event_type,
            version=version,
            aggregate_id=str(aggregate_id),
            data=plain,
            correlation_id=get_correlation_id(),
            causation_id=get_causation_id(),
            metadata=tracing.context_for_envelope(),
        )
        wire = envelope.to_wire()
        owed = bool(bus.subscribers_for(event_type))
        fast = owed and settings.EVENTS_FAST_PATH
        if owed:
            now = timezone.now()
            insert_row(
                outbox_model(using),
                using=using,
                id=envelope.id,
                event_type=event_type,
                version=version,
                aggregate_id=envelope.aggregate_id,
                envelope=wire,
                created_at=now,
                relay_after=now + timedelta(seconds=settings.EVENTS_REDELIVER_AFTER_SECONDS) if fast else now,
            )
    # robust: nothing that happens after the commit may fail the caller (the row is safe).
    transaction.on_commit(partial(_committed, using, wire, fast), using=using, robust=True)
    return envelope


def _committed(alias: str, wire: dict, fast: bool) -> None:
    # Counted here, not at insert time: a rolled-back event was never published.
    metrics.events_published.labels(wire["type"]).inc()
    if fast:
        from shop.events import relay

        relay.send_after_commit(alias, wire)
