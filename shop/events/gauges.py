"""Scrape-time gauges of the event plumbing: computed when Prometheus asks, never per event.

Each is one indexed query per context database (or one Redis round trip per queue), cached
by the collector for a few seconds however many scrapers ask.
"""

import json

from django.conf import settings
from redis.exceptions import RedisError

from shop.contexts import DEFAULT_QUEUE, WORKER_QUEUES
from shop.events.relay import outbox_lag
from shop.events.store import dead_letter_model
from shop.observability.metrics import scrape_gauge

# kombu's Redis transport: a queue is a list, priorities other than 0 live in suffixed lists,
# and messages delivered but not yet acknowledged sit in one hash for every queue.
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)
_UNACKED_HASH = "unacked"
_UNACKED_SCAN_LIMIT = 10_000


def broker_queues() -> list[str]:
    return list(WORKER_QUEUES)


@scrape_gauge("events_outbox_lag_seconds", "Seconds the oldest not-yet-received outbox row is overdue", ["context"])
def _outbox_lag():
    return [((alias,), outbox_lag(alias)) for alias in settings.CONTEXTS]


@scrape_gauge("events_dead_letters_outstanding", "Dead letters waiting for staff (status FAILED)", ["context"])
def _dead_letters():
    rows = []
    for alias in settings.CONTEXTS:
        model = dead_letter_model(alias)
        rows.append(((alias,), model.objects.using(alias).filter(status=model.Status.FAILED).count()))
    return rows


_clients: dict = {}


def _broker():
    """This process's client of the Redis broker (thread-safe, reconnects by itself), or None
    when the broker is not Redis."""
    import redis

    url = settings.CELERY_BROKER_URL
    if not url or not url.startswith(("redis://", "rediss://")):
        return None
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    return _clients[url]


def queue_lengths() -> dict[str, int] | None:
    """Messages waiting in each worker queue (all priorities), in one round trip; None when the
    broker is not Redis. Raises ``redis.RedisError`` when the broker cannot be reached."""
    client = _broker()
    if client is None:
        return None
    with client.pipeline(transaction=False) as pipe:
        for queue in broker_queues():
            pipe.llen(queue)
            for step in _PRIORITY_STEPS:
                pipe.llen(f"{queue}{_PRIORITY_SEPARATOR}{step}")
        lengths = pipe.execute()
    per_queue = len(_PRIORITY_STEPS) + 1
    return {queue: sum(lengths[i * per_queue : (i + 1) * per_queue]) for i, queue in enumerate(broker_queues())}


def messages_waiting() -> int:
    """Messages waiting in the worker queues, for admission control (``apps.orders.services``):
    0 when the broker is not Redis or cannot be reached, so a request is never refused because
    this count failed (an unreachable broker is the outbox sweeper's business)."""
    try:
        return sum((queue_lengths() or {}).values())
    except (RedisError, OSError):
        return 0


@scrape_gauge("celery_queue_length", "Messages waiting in a broker queue", ["queue"])
def _queue_depth():
    lengths = queue_lengths()
    return [((queue,), length) for queue, length in (lengths or {}).items()]


@scrape_gauge("celery_unacked_messages", "Messages delivered to a worker and not yet acknowledged", ["queue"])
def _unacked():
    client = _broker()
    if client is None:
        return []
    counts = dict.fromkeys(broker_queues(), 0)
    for seen, (_tag, raw) in enumerate(client.hscan_iter(_UNACKED_HASH, count=500)):
        if seen >= _UNACKED_SCAN_LIMIT:
            break
        try:
            routing_key = json.loads(raw)[2]
        except (ValueError, IndexError, TypeError):
            continue
        counts[routing_key if routing_key in counts else DEFAULT_QUEUE] += 1
    return [((queue,), count) for queue, count in counts.items()]
