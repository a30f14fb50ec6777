"""Cache-aside for hot reads, built so the cache can only ever make things faster.

- **Stampede protection.** Entries carry a soft expiry inside a longer hard TTL. When a
  hot entry goes soft-stale, one caller (holding a short ``add``-based lock) rebuilds it
  while everyone else keeps serving the stale copy; on a cold miss, callers that lose the
  lock wait briefly for the winner's value instead of all hitting the database.
- **Version keys instead of ``KEYS``.** A family of entries (e.g. every product list page)
  embeds a namespace version in its keys; invalidating the family is one ``INCR``. Old
  entries are never read again and age out by TTL. ``KEYS pattern`` blocks Redis and is
  never used.
- **Graceful degradation.** Every cache call goes through a circuit breaker. With Redis
  down, reads are built from the database, a warning is logged (once per failure, not per
  request once the breaker is open) and no request fails.
- **Counted.** Hits, misses, stale serves and errors go to ``cache_requests_total``.
"""

import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from django.conf import settings
from django.core.cache import caches
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

from shop.observability import metrics
from shop.resilience.breaker import CircuitOpenError, guard

logger = structlog.get_logger("shop.cache")

T = TypeVar("T")

BREAKER = "cache"
CACHE_ERRORS = (ConnectionInterrupted, RedisError, OSError)
_POLL_SECONDS = 0.05


class CacheUnavailable(Exception):
    """The cache backend could not be reached (or its circuit is open)."""


def _setting(name: str, default: float) -> float:
    return getattr(settings, name, default)


def _backend():
    return caches[getattr(settings, "SHOP_CACHE_ALIAS", "default")]


def _call(operation: str, *args, **kwargs) -> Any:
    try:
        with guard(
            BREAKER,
            failures=CACHE_ERRORS,
            fail_max=int(_setting("CACHE_BREAKER_FAIL_MAX", 5)),
            reset_timeout=_setting("CACHE_BREAKER_RESET_SECONDS", 30),
        ):
            return getattr(_backend(), operation)(*args, **kwargs)
    except CircuitOpenError as exc:
        raise CacheUnavailable("cache circuit open") from exc
    except CACHE_ERRORS as exc:
        logger.warning("cache_unavailable", operation=operation, error=str(exc)[:200])
        raise CacheUnavailable(str(exc)) from exc


def _count(name: str, result: str) -> None:
    metrics.cache_requests.labels(name, result).inc()


def _version_key(namespace: str) -> str:
    return f"ver:{namespace}"


def version(namespace: str) -> int:
    """Current version of ``namespace``; a missing version starts from the clock, so a
    version lost to eviction can never come back to a number whose entries still exist."""
    key = _version_key(namespace)
    current = _call("get", key)
    if current is None:
        _call("add", key, time.time_ns(), timeout=None)
        current = _call("get", key)
    return int(current)


def bump(namespace: str, *, strict: bool = False) -> None:
    """Invalidate every entry of ``namespace`` at once (one INCR)."""
    _local_drop(namespace=namespace)
    key = _version_key(namespace)
    try:
        try:
            _call("incr", key)
        except ValueError:  # never read yet: any fresh version invalidates nothing
            _call("add", key, time.time_ns(), timeout=None)
    except CacheUnavailable:
        if strict:
            raise
        logger.warning("cache_bump_skipped", namespace=namespace)


def invalidate(*keys: str, strict: bool = False) -> None:
    """Delete entries. ``strict`` raises when the cache is unreachable (an event handler
    wants that, so the delivery is retried until the stale entry is really gone)."""
    _local_drop(keys=keys)
    try:
        _call("delete_many", list(keys))
    except CacheUnavailable:
        if strict:
            raise
        logger.warning("cache_invalidate_skipped", keys=list(keys)[:10])


def get_or_build(
    key: str,
    build: Callable[[], T],
    *,
    ttl: float,
    name: str,
    namespace: str | None = None,
    stale_for: float | None = None,
    negative_ttl: float | None = None,
) -> T:
    """Cache-aside read of ``key``; ``build()`` produces the value from the source of truth.

    ``ttl`` is how long an entry is fresh; afterwards it may be served stale for
    ``stale_for`` more seconds while a single caller rebuilds it. A ``None`` result is
    cached for ``negative_ttl`` so unknown ids do not reach the database on every request.
    """
    try:
        if namespace is not None:
            key = f"{namespace}:v{version(namespace)}:{key}"
        entry = _call("get", key)
    except CacheUnavailable:
        _count(name, "error")
        return build()

    if entry is not None:
        fresh_until, value = entry
        if time.time() < fresh_until:
            _count(name, "hit")
            return value
        _count(name, "stale")
        refreshed = _rebuild_if_first(key, build, ttl, stale_for, negative_ttl)
        return value if refreshed is _NOT_REBUILT else refreshed

    _count(name, "miss")
    built = _rebuild_if_first(key, build, ttl, stale_for, negative_ttl)
    if built is not _NOT_REBUILT:
        return built
    return _wait_for_winner(key, build)


_NOT_REBUILT = object()


def _rebuild_if_first(key, build, ttl, stale_for, negative_ttl):
    """Rebuild and store the entry if we win the lock; ``_NOT_REBUILT`` if someone else holds it."""
    lock_key = f"lock:{key}"
    token = uuid.uuid4().hex
    try:
        acquired = _call("add", lock_key, token, timeout=_setting("CACHE_LOCK_SECONDS", 10))
    except CacheUnavailable:
        return build()
    if not acquired:
        return _NOT_REBUILT
    try:
        value = build()
        _store(key, value, ttl, stale_for, negative_ttl)
        return value
    finally:
        _release(lock_key, token)


def _store(key, value, ttl, stale_for, negative_ttl) -> None:
    if value is None:
        ttl = negative_ttl if negative_ttl is not None else min(ttl, 30)
    grace = _setting("CACHE_STALE_SECONDS", 60) if stale_for is None else stale_for
    try:
        _call("set", key, (time.time() + ttl, value), timeout=ttl + grace)
    except CacheUnavailable:
        pass


def _release(lock_key: str, token: str) -> None:
    try:
        if _call("get", lock_key) == token:
            _call("delete", lock_key)
    except CacheUnavailable:
        pass  # the lock expires on its own


def _wait_for_winner(key: str, build: Callable[[], T]) -> T:
    """Another caller is rebuilding a cold entry: wait a moment for it, then give up and build."""
    deadline = time.monotonic() + _setting("CACHE_WAIT_SECONDS", 3)
    while time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
        try:
            entry = _call("get", key)
        except CacheUnavailable:
            break
        if entry is not None:
            return entry[1]
    return build()


# --- whole entries, one round trip (shop.api.responsecache) ------------------------------------

# A per-process copy of the hottest entries for ``LOCAL_CACHE_SECONDS`` (micro-caching): a
# storefront asks for the same product many times a second, and each answer from process
# memory saves a Redis round trip. Another process's invalidation reaches this copy only
# when it expires, so it stays short; this process's own invalidations drop it at once.
_local: dict[str, tuple[float, Any]] = {}
_LOCAL_MAX_ENTRIES = 2000


def _local_get(key: str) -> Any | None:
    entry = _local.get(key)
    if entry is None or entry[0] < time.monotonic():
        return None
    return entry[1]


def _local_put(key: str, value: Any, seconds: float | None = None) -> None:
    seconds = _setting("LOCAL_CACHE_SECONDS", 0) if seconds is None else seconds
    if seconds <= 0:
        return
    if len(_local) >= _LOCAL_MAX_ENTRIES:
        _local.clear()  # crude but bounded: the hot entries come back within a second
    _local[key] = (time.monotonic() + seconds, value)


def _local_drop(*, keys=(), namespace: str | None = None) -> None:
    for key in keys:
        _local.pop(key, None)
    if namespace is not None:
        for key in [k for k in _local if k.startswith(f"{namespace}:")]:
            _local.pop(key, None)


def remembered(key: str, build: Callable[[], T], *, seconds: float) -> T:
    """``build()``, kept in this process for ``seconds``: for a figure every request consults
    but none needs to the millisecond (a count behind a limit), so a busy process reads it a
    few times a second, not once per request. Never in Redis: each process keeps its own."""
    value = _local_get(key)
    if value is None:
        value = build()
        _local_put(key, value, seconds)
    return value


def local_clear() -> None:
    """Forget every per-process copy (tests, between cases)."""
    _local.clear()


def lookup(key: str, *, namespace: str | None = None, local: bool = True) -> Any | None:
    """The value stored by ``store`` under ``key``, or None (missing, stale family, cache down).

    With a ``namespace`` the entry carries the family version it was stored under, and one
    ``MGET`` reads it together with the current version: a hit costs a single round trip,
    or none while this process holds a fresh local copy. ``local=False`` skips the
    per-process copy, for entries another process's ``invalidate`` must end at once.
    """
    local_key = key if namespace is None else f"{namespace}:{key}"
    value = _local_get(local_key) if local else None
    if value is not None:
        return value
    try:
        if namespace is None:
            value = _call("get", key)
        else:
            found = _call("get_many", [_version_key(namespace), key])
            current, entry = found.get(_version_key(namespace)), found.get(key)
            valid = current is not None and entry is not None and entry[0] == int(current)
            value = entry[1] if valid else None
    except CacheUnavailable:
        return None
    if value is not None and local:
        _local_put(local_key, value)
    return value


def store(key: str, value: Any, *, ttl: float, namespace: str | None = None, seen: int | None = None) -> None:
    """Store ``value`` for ``lookup`` (best effort: a cache outage only costs the next miss).

    ``seen``: the family's version read before ``value`` was built from the database (``version``).
    Read here instead, after the build, a write that bumped the family meanwhile had the value built
    from the rows before it stored under the new version, and served until its TTL."""
    try:
        entry = value if namespace is None else (version(namespace) if seen is None else seen, value)
        _call("set", key, entry, timeout=ttl)
    except CacheUnavailable:
        pass
