"""Readiness probes: each returns (ok, detail) and never raises.

The verdict is cached for ``HEALTH_READY_CACHE_SECONDS`` per process, so probes and scrapers
(or a flood of anonymous requests) cost at most one round of connections per period.
"""

import threading
import time

from django.conf import settings
from django.db import connections


def _timed(fn):
    started = time.perf_counter()
    try:
        detail = fn() or "ok"
        return True, {"status": "ok", "detail": detail, "ms": round((time.perf_counter() - started) * 1000, 1)}
    except Exception as exc:  # noqa: BLE001 - a probe reports every failure
        return False, {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}


def check_database(alias: str):
    def probe():
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    return _timed(probe)


def check_redis():
    if not settings.REDIS_URL:
        return True, {"status": "skipped", "detail": "REDIS_URL not set (in-process cache)"}

    def probe():
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()

    return _timed(probe)


def check_broker():
    if not settings.CELERY_BROKER_URL:
        return True, {"status": "skipped", "detail": "no broker: background work runs in-process"}

    def probe():
        from celery import current_app

        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=1)

    return _timed(probe)


_lock = threading.Lock()
_cached: tuple[float, tuple[bool, dict]] | None = None


def readiness() -> tuple[bool, dict]:
    """(healthy, detail per dependency), at most ``HEALTH_READY_CACHE_SECONDS`` old."""
    global _cached
    with _lock:
        if _cached is not None and time.monotonic() - _cached[0] < settings.HEALTH_READY_CACHE_SECONDS:
            return _cached[1]
        result = _probe_all()
        _cached = (time.monotonic(), result)
        return result


def forget() -> None:
    """Drop the cached verdict (tests that break a dependency on purpose)."""
    global _cached
    with _lock:
        _cached = None


def _probe_all() -> tuple[bool, dict]:
    checks = {f"database:{alias}": check_database(alias) for alias in settings.CONTEXTS}
    checks["redis"] = check_redis()
    checks["broker"] = check_broker()
    healthy = all(ok for ok, _ in checks.values())
    return healthy, {name: detail for name, (_, detail) in checks.items()}
