"""Readiness probes: each returns (ok, detail) and never raises.

The verdict is cached for ``HEALTH_READY_CACHE_SECONDS`` per process, so probes and scrapers
(or a flood of anonymous requests) cost at most one round of connections per period.

**Ready means this process can serve: its context databases answer** (a worker's, its broker too).
Redis and, for web, the broker are reported, and their outage does not make the process unready:
every replica shares them, so failing readiness on them took every replica out of the load
balancer at once, a full outage, while the API keeps working without them (the cache falls back
to the database, the outbox keeps events owed until the broker is back, sign-in and registration
refuse with 503 while their limits cannot count). Their outage is the alerts' business, not the
load balancer's.

**A verdict within ``HEALTH_READY_TIMEOUT_SECONDS``.** The probes run at once in threads, and one
that has not answered by then is reported down. One after the other, each database waited for the
pool's own timeout (10 s) with PostgreSQL down, and a probe took about 50 s: past gunicorn's 30 s,
so the worker serving it was killed, and liveness probes queued behind it.
"""

import contextvars
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial

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
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        finally:
            connections[alias].close()  # a probe thread's own session, back to the pool

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

        quick = {"socket_connect_timeout": 1, "socket_timeout": 1}  # Redis's transport takes these, not connect_timeout
        url = settings.CELERY_BROKER_URL
        with current_app.connection_for_write(url, connect_timeout=1, transport_options=quick) as conn:
            conn.ensure_connection(max_retries=1, timeout=1)

    return _timed(probe)


_lock = threading.Lock()
_cached: tuple[float, tuple[bool, dict]] | None = None


def readiness(*, broker_required: bool = False) -> tuple[bool, dict]:
    """(healthy, detail per dependency), at most ``HEALTH_READY_CACHE_SECONDS`` old.

    ``broker_required``: a worker, which can do nothing without its broker (its ops port)."""
    global _cached
    with _lock:
        if _cached is None or time.monotonic() - _cached[0] >= settings.HEALTH_READY_CACHE_SECONDS:
            result = _probe_all()  # stamped once answered: a verdict that took its deadline is fresh now
            _cached = (time.monotonic(), result)
        healthy, checks = _cached[1]
        if broker_required and checks["broker"]["status"] == "down":
            healthy = False
        return healthy, checks


def forget() -> None:
    """Drop the cached verdict (tests that break a dependency on purpose)."""
    global _cached
    with _lock:
        _cached = None
        _in_flight.clear()


_probes: ThreadPoolExecutor | None = None
_in_flight: dict[str, Future] = {}


def _forked() -> None:
    """A forked child has none of its parent's threads: its probes start afresh."""
    global _probes
    _probes = None
    _in_flight.clear()


os.register_at_fork(after_in_child=_forked)


def _probe_all() -> tuple[bool, dict]:
    probes = {f"database:{alias}": partial(check_database, alias) for alias in settings.CONTEXTS}
    probes["redis"] = check_redis
    probes["broker"] = check_broker
    running = {name: _started(name, probe) for name, probe in probes.items()}
    wait(running.values(), timeout=settings.HEALTH_READY_TIMEOUT_SECONDS)
    checks = {}
    for name, future in running.items():
        if future.done():
            checks[name] = future.result()
        else:  # it goes on in its thread, bounded by its own timeouts; the verdict does not wait
            late = f"no answer within {settings.HEALTH_READY_TIMEOUT_SECONDS:g} s"
            checks[name] = (False, {"status": "down", "error": late})
    healthy = all(ok for name, (ok, _) in checks.items() if name.startswith("database:"))
    return healthy, {name: detail for name, (_, detail) in checks.items()}


def _started(name: str, probe) -> Future:
    """The dependency's probe still running from an earlier verdict, else a new one: a dependency that
    hangs holds one thread, not one per verdict (the others' probes never queue behind it)."""
    earlier = _in_flight.get(name)
    if earlier is not None and not earlier.done():
        return earlier
    # In the request's context (its trace, its log fields): the probe's queries are its children.
    global _probes
    if _probes is None:
        _probes = ThreadPoolExecutor(max_workers=16, thread_name_prefix="readiness")
    _in_flight[name] = future = _probes.submit(contextvars.copy_context().run, probe)
    return future
