"""Database pool usage per process, sampled at most every few seconds (never per query).

psycopg's pool keeps its statistics in memory, so a sample costs no round trip; the gauge
is summed over the live processes of a group (``livesum``).
"""

import time

from django.conf import settings
from django.db import connections

from shop.observability import metrics

SAMPLE_EVERY_SECONDS = 5.0
_STATS = {"size": "pool_size", "available": "pool_available", "waiting": "requests_waiting"}
_last = 0.0


def sample() -> None:
    global _last
    now = time.monotonic()
    if now - _last < SAMPLE_EVERY_SECONDS:
        return
    _last = now
    for alias in settings.CONTEXTS:
        if not connections[alias].settings_dict.get("OPTIONS", {}).get("pool"):
            continue
        try:
            stats = connections[alias].pool.get_stats()
        except Exception:  # noqa: BLE001 - measurement never breaks a request
            continue
        for state, key in _STATS.items():
            metrics.db_pool_connections.labels(alias, state).set(stats.get(key, 0))
