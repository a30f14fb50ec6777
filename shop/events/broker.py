"""Kombu's Redis transport, with one client object per channel instead of one per operation.

Kombu's Redis channel builds a new ``redis.Redis`` object for every acknowledgement, every
message it records as unacknowledged and every publish (``Channel.conn_or_acquire``), and
redis-py's constructor copies its table of about 200 response callbacks each time: 70 µs per
object, a fifth of the worker's main process at saturation (py-spy, session 6). The object is
only a handle on the channel's connection pool and is thread-safe, so one per channel is
enough; a channel whose pool was replaced (after a broker disconnect) gets a new one.

Selected by ``CELERY_BROKER_TRANSPORT`` for ``redis://`` and ``rediss://`` broker URLs
(config/settings.py); everything else is kombu's own transport.

On Redis a queue is the list a publish pushes to, and a publish to the anonymous exchange (the
queue's name as routing key, how Celery sends a task to a named queue) pushes to it by name:
there is nothing to declare. Celery still declares the queue on every publish, and kombu's
check that it already did (a bound copy of the queue and its exchange, inside a retry
wrapper) was a fifth of a publish's CPU. ``declare_on_publish`` tells the relay to skip it
on this transport; other brokers (RabbitMQ, where an undeclared queue drops the message)
declare as Celery does.
"""

from contextlib import contextmanager

from django.conf import settings
from kombu.transport import redis


class Channel(redis.Channel):
    _shared_client = None

    @contextmanager
    def conn_or_acquire(self, client=None):
        if client:
            yield client
            return
        shared = self._shared_client
        if shared is None or shared.connection_pool is not self.pool:
            shared = self._shared_client = self._create_client()
        yield shared


class Transport(redis.Transport):
    Channel = Channel


def declare_on_publish() -> list | None:
    """``declare`` for ``apply_async``: nothing on this transport, Celery's default elsewhere."""
    return [] if getattr(settings, "CELERY_BROKER_TRANSPORT", None) == f"{__name__}:Transport" else None
