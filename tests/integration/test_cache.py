"""shop.cache against the real Redis: cache-aside, stale-while-rebuild, stampede, version keys."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.core.cache import cache as django_cache

from shop import cache
from shop.observability.metrics import cache_requests


def counter(name: str, result: str) -> float:
    return cache_requests.labels(name, result)._value.get()


class Builder:
    def __init__(self, value="fresh", pause: float = 0.0):
        self.value, self.pause, self.calls = value, pause, 0
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            self.calls += 1
        time.sleep(self.pause)
        return self.value


def test_miss_then_hit_builds_once_and_counts_both():
    build = Builder({"id": 1})
    misses, hits = counter("t1", "miss"), counter("t1", "hit")
    assert cache.get_or_build("k1", build, ttl=60, name="t1") == {"id": 1}
    assert cache.get_or_build("k1", build, ttl=60, name="t1") == {"id": 1}
    assert build.calls == 1
    assert (counter("t1", "miss") - misses, counter("t1", "hit") - hits) == (1, 1)


def test_none_is_cached_briefly_so_unknown_ids_do_not_reach_the_database():
    build = Builder(None)
    assert cache.get_or_build("k-none", build, ttl=60, name="t", negative_ttl=30) is None
    assert cache.get_or_build("k-none", build, ttl=60, name="t", negative_ttl=30) is None
    assert build.calls == 1


def test_a_stale_entry_is_served_while_someone_else_rebuilds_it():
    django_cache.set("k2", (time.time() - 1, "stale"), timeout=60)  # soft-expired entry
    django_cache.add("lock:k2", "someone-else", timeout=60)
    build = Builder("fresh")
    assert cache.get_or_build("k2", build, ttl=60, name="t") == "stale"
    assert build.calls == 0

    django_cache.delete("lock:k2")
    assert cache.get_or_build("k2", build, ttl=60, name="t") == "fresh"
    assert cache.get_or_build("k2", build, ttl=60, name="t") == "fresh"
    assert build.calls == 1


def test_a_cold_hot_key_is_built_once_while_concurrent_readers_wait(settings):
    settings.CACHE_WAIT_SECONDS = 20
    build = Builder("value", pause=0.3)
    barrier = threading.Barrier(16)

    def read(_):
        barrier.wait(timeout=10)
        return cache.get_or_build("hot", build, ttl=60, name="t")

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(read, range(16)))
    assert results == ["value"] * 16
    assert build.calls == 1


def test_bumping_a_namespace_invalidates_all_its_entries_without_scanning():
    first, second = Builder("a"), Builder("b")
    assert cache.get_or_build("page-1", first, ttl=60, name="t", namespace="ns") == "a"
    assert cache.get_or_build("page-1", second, ttl=60, name="t", namespace="ns") == "a"
    cache.bump("ns")
    assert cache.get_or_build("page-1", second, ttl=60, name="t", namespace="ns") == "b"


def test_a_lost_version_key_never_revives_old_entries():
    cache.get_or_build("page", Builder("old"), ttl=60, name="t", namespace="ns2")
    cache.bump("ns2")
    django_cache.delete("ver:ns2")  # evicted
    assert cache.get_or_build("page", Builder("new"), ttl=60, name="t", namespace="ns2") == "new"


def test_invalidate_deletes_keys():
    cache.get_or_build("k3", Builder("v"), ttl=60, name="t")
    cache.invalidate("k3")
    assert django_cache.get("k3") is None
