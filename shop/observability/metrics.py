"""Prometheus metrics, defined once so every process exports the same names.

How processes expose them (docs/operations.md): each process group (gunicorn master and its
workers; a Celery worker and its prefork children) shares one ``PROMETHEUS_MULTIPROC_DIR``,
wiped when the group starts, and one endpoint of that group aggregates the folder. Gauges
that describe shared state (outbox lag, queue depth, dead letters, overdue sagas, the
payment breaker) are not counted on the hot path: ``scrape_gauge`` functions compute them
when Prometheus scrapes, cached for a few seconds.

Every label value is bounded: routes come from URL patterns, HTTP methods outside a known
set become ``other``, consumers, tasks and queues are names from code, never from a client.
"""

import os
import threading
import time
from collections.abc import Callable, Iterable

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = structlog.get_logger("shop.metrics")

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)

# --- web (RED per route) ---------------------------------------------------------------------
http_requests = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
http_latency = Histogram("http_request_duration_seconds", "HTTP request latency", ["method", "route"], buckets=_FAST)
http_retried = Counter(
    "http_requests_retried_total",
    "Requests re-run once because their database session died before they committed anything",
    ["method", "route"],
)
cache_requests = Counter("cache_requests_total", "Cache look-ups", ["cache", "result"])

# --- workers ---------------------------------------------------------------------------------
task_runs = Counter("celery_tasks_total", "Celery tasks finished", ["task", "queue", "state"])
task_duration = Histogram(
    "celery_task_duration_seconds", "Celery task run time", ["task", "queue"], buckets=(*_FAST, 10, 30, 60)
)
task_batch_size = Histogram(
    "celery_task_batch_size",
    "Messages run by one batch task (celery-batches)",
    ["task", "queue"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200),
)
events_published = Counter("events_published_total", "Domain events written to an outbox", ["type"])
events_delivered = Counter("events_delivered_total", "Event deliveries handled", ["consumer"])
events_duplicates = Counter("events_duplicate_total", "Duplicate deliveries ignored by the inbox", ["consumer"])
events_retried = Counter("events_retried_total", "Event deliveries retried", ["consumer"])
events_dead_lettered = Counter("events_dead_lettered_total", "Deliveries turned into dead letters", ["consumer"])
outbox_swept = Counter("events_outbox_swept_total", "Outbox rows the sweeper sent (fast path missed)", ["context"])
sweeps = Counter("events_sweeps_total", "Outbox sweeps run (scheduled by beat)")

# --- business --------------------------------------------------------------------------------
orders_created = Counter("orders_created_total", "Orders placed", ["status"])
order_placement_seconds = Histogram(
    "order_placement_duration_seconds", "Order placement duration", buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5)
)
saga_outcomes = Counter("checkout_saga_outcomes_total", "Checkout sagas ended", ["outcome"])
saga_duration = Histogram(
    "checkout_saga_duration_seconds", "Order placed to saga end, by outcome", ["outcome"], buckets=_SLOW
)
saga_step_duration = Histogram(
    "checkout_saga_step_duration_seconds", "Saga step entered to step left, by step", ["step"], buckets=_SLOW
)
provider_latency = Histogram(
    "payment_provider_request_duration_seconds",
    "One payment-provider call (each retry attempt)",
    ["provider", "operation", "outcome"],
    buckets=(*_FAST, 10),
)

# --- resilience ------------------------------------------------------------------------------
circuit_state_changes = Counter("circuit_breaker_transitions_total", "Circuit breaker transitions", ["name", "state"])
circuit_open = Gauge(
    "circuit_breaker_open", "1 while a process-local breaker is open", ["name"], multiprocess_mode="livemax"
)
db_pool_connections = Gauge(
    "db_pool_connections", "Connection pool per database alias", ["alias", "state"], multiprocess_mode="livesum"
)


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


# --- scrape-time gauges ----------------------------------------------------------------------
ScrapeFn = Callable[[], Iterable[tuple[tuple[str, ...], float]]]
_scrape_gauges: dict[str, tuple[str, tuple[str, ...], ScrapeFn]] = {}


def scrape_gauge(name: str, documentation: str, labels: Iterable[str] = ()):
    """Register ``fn() -> [(label values, value), ...]``, run when /metrics is scraped.

    Used for state shared by all processes, so the hot path never pays for it. Contexts
    register theirs from ``AppConfig.ready`` (the kernel imports nothing from them).
    """

    def decorator(fn: ScrapeFn) -> ScrapeFn:
        _scrape_gauges[name] = (documentation, tuple(labels), fn)
        return fn

    return decorator


class ScrapeTimeCollector(Collector):
    """Runs the registered gauge functions; one failing function hides only its own gauge."""

    def __init__(self, ttl: float = 5.0):
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, list] = (0.0, [])

    def _compute(self) -> list:
        families = []
        for name, (doc, labels, fn) in sorted(_scrape_gauges.items()):
            family = GaugeMetricFamily(name, doc, labels=list(labels))
            try:
                for values, value in fn():
                    family.add_metric(list(values), value)
            except Exception:  # a scrape must not fail because one source is down
                logger.warning("scrape_gauge_failed", gauge=name, exc_info=True)
                continue
            families.append(family)
        up = GaugeMetricFamily("shop_scrape_gauges_ok", "1 when every scrape-time gauge could be computed")
        up.add_metric([], 1.0 if len(families) == len(_scrape_gauges) else 0.0)
        return [*families, up]

    def collect(self):
        with self._lock:
            stamp, families = self._cached
            if time.monotonic() - stamp > self.ttl:
                families = self._compute()
                self._cached = (time.monotonic(), families)
        yield from families


_scrape_collector = ScrapeTimeCollector()
_scrape_registry = CollectorRegistry()
_scrape_registry.register(_scrape_collector)


def forget_scrape_cache() -> None:
    """The next scrape recomputes every scrape-time gauge (tests)."""
    _scrape_collector._cached = (0.0, [])


def render(*, include_shared_state: bool = True) -> tuple[bytes, str]:
    """The exposition of this process group (multiprocess folder when set), plus scrape gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    payload = generate_latest(registry)
    if include_shared_state:
        payload += generate_latest(_scrape_registry)
    return payload, CONTENT_TYPE_LATEST
