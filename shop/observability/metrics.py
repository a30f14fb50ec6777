"""Prometheus metrics, defined once so every process exports the same names.

Under gunicorn and Celery set ``PROMETHEUS_MULTIPROC_DIR`` so that counters from every
worker process are aggregated by ``/metrics`` (prometheus_client's multiprocess mode).
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

http_requests = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
http_latency = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
cache_requests = Counter("cache_requests_total", "Cache look-ups", ["cache", "result"])
events_published = Counter("events_published_total", "Domain events written to an outbox", ["type"])
events_delivered = Counter("events_delivered_total", "Event deliveries handled", ["consumer"])
events_duplicates = Counter("events_duplicate_total", "Duplicate deliveries ignored by the inbox", ["consumer"])
events_retried = Counter("events_retried_total", "Event deliveries retried", ["consumer"])
events_dead_lettered = Counter("events_dead_lettered_total", "Deliveries turned into dead letters", ["consumer"])
outbox_lag = Gauge(
    "events_outbox_lag_seconds", "Age of the oldest unsent outbox row", ["context"], multiprocess_mode="max"
)
orders_created = Counter("orders_created_total", "Orders placed", ["status"])
order_placement_seconds = Histogram(
    "order_placement_duration_seconds", "Order placement duration", buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5)
)
saga_outcomes = Counter("checkout_saga_outcomes_total", "Checkout sagas ended", ["outcome"])
circuit_state_changes = Counter("circuit_breaker_transitions_total", "Circuit breaker transitions", ["name", "state"])


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
