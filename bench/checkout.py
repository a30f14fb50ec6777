"""Checkout benchmark: POST /api/v1/orders → CONFIRMED with the production processes.

    make bench                   (or: .venv/bin/python bench/checkout.py [--low 1.5] [--high 6] ...)

1. Drops and re-creates its own databases ``shop_bench_<context>``, migrates them
   (``manage.py migrate_all``), creates users (JWT access tokens minted in-process) and
   products with plenty of stock through the contexts' services. Redis DB 5 is its cache,
   DB 4 its broker; both are flushed at the start and the end.
2. Starts gunicorn (2 sync workers), a Celery worker on every queue (``WORKER_CONCURRENCY``, 4) and
   beat, as the Makefile does, and waits for ``/health/ready``.
3. Drives two open-loop loads (a fixed arrival rate each, ``--duration`` seconds): ``--low``,
   then ``--high``, by default 80 % of the capacity the low run implies (2 pool processes ÷
   pool time per order), so that it approaches saturation whatever else runs on the machine. Waits
   (bounded) for every saga to end, then reads POST→CONFIRMED per order from the orders
   database. CPU time per process group comes from /proc.
4. During the high load it counts what a confirmed order costs PostgreSQL
   (``pg_stat_database``) and replays exactly that with plain psycopg: the database floor.
5. Prints the table and writes it into BENCHMARKS.md between the ``checkout`` markers.

Every process it starts is stopped on success, failure or Ctrl-C. Nothing else is touched:
no other database, no other Redis DB.
"""

import argparse
import os
import platform
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _floor, _procs, _report, _tasks  # noqa: E402
from bench._load import run_open_loop  # noqa: E402
from bench._setup import (  # noqa: E402
    BROKER_URL,
    DATABASES,
    PG_DSN,
    REDIS_URL,
    STOCK,
    drop_databases,
    environment,
    flush_redis,
    migrate,
    recreate_databases,
    seed,
)
from shop.contexts import WORKER_QUEUES  # noqa: E402

QUEUES = ",".join(WORKER_QUEUES)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--low", type=float, default=1.5, help="low offered rate, POST/s")
    parser.add_argument("--high", type=float, default=None, help="high offered rate, POST/s (default: auto)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load per rate")
    parser.add_argument("--threads", type=int, default=16, help="client threads (and floor threads)")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--settle", type=float, default=60.0, help="max seconds to wait for sagas after a load")
    parser.add_argument("--floor-seconds", type=float, default=15.0)
    parser.add_argument("--keep-databases", action="store_true", help="leave shop_bench_* for inspection")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    return parser.parse_args()


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _step(message: str, began: float) -> None:
    print(f"[{time.monotonic() - began:6.1f} s] {message}", flush=True)


def start_services(env: dict, tmp: Path, port: int) -> dict[str, _procs.Service]:
    python = sys.executable
    specs = {
        "gunicorn": [python, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
                     "--workers", "2", "--timeout", "30", "--graceful-timeout", "20", "--no-control-socket"],
        "worker": [python, "-m", "celery", "-A", "config", "worker", "-Q", QUEUES,
                   "--concurrency", str(_procs.WORKER_CONCURRENCY), "--loglevel", "INFO",
                   "--hostname", f"bench-checkout-{os.getpid()}@%h"],
        "beat": [python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
                 "--schedule", str(tmp / "celerybeat-schedule")],
    }  # fmt: skip
    return {name: _procs.Service(name, cmd, env, ROOT, tmp / f"{name}.log").start() for name, cmd in specs.items()}


def wait_ready(port: int, services: dict, timeout: float = 60) -> None:
    import http.client

    services["worker"].wait_for_log("ready.", timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for service in services.values():
            if not service.alive():
                raise RuntimeError(f"{service.name} exited:\n{service.log_tail()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health/ready")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"/health/ready not 200 after {timeout:.0f} s:\n{services['gunicorn'].log_tail()}")


def broker_backlog() -> int:
    """Messages queued or delivered-but-unacked in our broker DB."""
    import redis

    client = redis.Redis.from_url(BROKER_URL)
    queued = sum(client.llen(key) for key in client.scan_iter() if client.type(key) == b"list")
    return queued + client.hlen("unacked")


def wait_quiet(order_ids: list[str], timeout: float) -> tuple[float, int]:
    """Until every saga of ``order_ids`` has ended and the broker is empty (twice in a row).
    Returns (seconds waited, sagas still running)."""
    from apps.orders.saga.models import CheckoutSaga, SagaStatus

    running_states = [SagaStatus.STARTED, SagaStatus.COMPENSATING]
    began = time.monotonic()
    quiet_once = False
    while True:
        running = CheckoutSaga.objects.filter(order_id__in=order_ids, status__in=running_states).count()
        quiet = running == 0 and broker_backlog() == 0
        if (quiet and quiet_once) or time.monotonic() - began > timeout:
            return time.monotonic() - began, running
        quiet_once = quiet
        time.sleep(0.5)


# --- load ------------------------------------------------------------------------------------------


def order_request(tokens: list[str], product_ids: list[uuid.UUID], seed: int):
    def request(index: int) -> tuple[str, dict, dict]:
        rng = random.Random(seed * 1_000_003 + index)
        products = rng.sample(product_ids, rng.randint(1, 3))
        body = {
            "items": [{"productId": str(pid), "quantity": rng.randint(1, 2)} for pid in products],
            "shippingAddress": {
                "street": "1 Main St", "city": "Springfield", "state": "IL", "zipCode": "62701", "country": "USA",
            },
            "shippingMethod": "standard",
            "payment": {"method": "card", "token": "tok_visa"},
        }  # fmt: skip
        headers = {"Authorization": f"Bearer {rng.choice(tokens)}", "Idempotency-Key": str(uuid.uuid4())}
        return "/api/v1/orders", body, headers

    return request


def outcomes(order_ids: list[str]) -> tuple[dict, dict]:
    """Per order: (created_at, status, cancellation reason), and CONFIRMED time by order."""
    from apps.orders.models import Order, OrderStatus, OrderStatusHistory

    orders = {
        str(oid): (created, status, reason)
        for oid, created, status, reason in Order.objects.filter(id__in=order_ids).values_list(
            "id", "created_at", "status", "cancellation_reason"
        )
    }
    confirmed = {
        str(oid): at
        for oid, at in OrderStatusHistory.objects.filter(
            order_id__in=order_ids, to_status=OrderStatus.CONFIRMED
        ).values_list("order_id", "created_at")
    }
    return orders, confirmed


def run_phase(name: str, rate: float, args, port: int, request, meter: _procs.CpuMeter, worker_log: Path) -> dict:
    meter.start()
    wall_start = time.time()
    results, started, scheduled_end = run_open_loop(
        host="127.0.0.1", port=port, rate=rate, duration=args.duration, threads=args.threads, request=request
    )
    window_end = wall_start + (scheduled_end - started) + 0.2
    ids = [r.order_id for r in results if r.order_id]
    settled, running = wait_quiet(ids, args.settle)
    cpu = meter.stop()
    tasks = _tasks.task_stats(worker_log, wall_start, wall_start + cpu["wall"])
    orders, confirmed = outcomes(ids)
    ok = [r for r in results if r.order_id]
    statuses = Counter(r.status for r in results)
    other = Counter(reason or status for _, status, reason in orders.values() if status != "CONFIRMED")
    first_created = min((created for created, _, _ in orders.values()), default=None)
    last_confirmed = max(confirmed.values(), default=None)
    span = (last_confirmed - first_created).total_seconds() if confirmed else 0
    return {
        "name": name,
        "rate": rate,
        "duration": args.duration,
        "scheduled": len(results),
        "created": len(ok),
        "post_rate": len(ok) / max(max(r.done for r in ok) - started, 1e-9) if ok else 0.0,
        "confirmed": len(confirmed),
        "confirmed_in_window": sum(1 for at in confirmed.values() if at.timestamp() <= window_end),
        "confirmed_rate": len(confirmed) / span if span else 0.0,
        "other_outcomes": ", ".join(f"{k}: {v}" for k, v in sorted(other.items())),
        "settle_note": f"{settled:.1f} s" + (f" ({running} sagas still running)" if running else ""),
        "post_latency": [r.latency for r in ok],
        "post_service": [r.service for r in ok],
        "to_confirmed": [(at - orders[oid][0]).total_seconds() for oid, at in confirmed.items()],
        "statuses": statuses,
        "cpu": cpu,
        "tasks": sum(tasks["count"].values()),
        "task_seconds": sum(tasks["seconds"].values()),
    }


# --- report ----------------------------------------------------------------------------------------


def machine() -> dict:
    import redis
    from django.db import connections

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.processor())
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line))
    with connections["orders"].cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0].split()[0]
    return {
        "cpus": os.cpu_count(),
        "model": model,
        "mem": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "pg": pg,
        "redis": redis.Redis.from_url(REDIS_URL).info("server")["redis_version"],
        "python": platform.python_version(),
    }


def auto_high_rate(low: dict, low_rate: float, processes: int = 2) -> float:
    """80 % of what the Celery pool could confirm if it were busy all the time at the low run's cost per order
    (the pool is what saturates first), never below twice the low rate. On a quiet machine this lands just
    below saturation; when other processes take CPU mid-run, tasks slow down and it may overshoot, which the
    report then shows as a growing backlog (and the confirmed rate is the capacity)."""
    if not low["confirmed"] or not low["task_seconds"]:
        return 2 * low_rate
    capacity = processes / (low["task_seconds"] / low["confirmed"])
    return round(max(2 * low_rate, min(0.8 * capacity, 25.0)), 1)


def cleanup(services: dict[str, _procs.Service], *, keep_databases: bool) -> None:
    """Stop everything we started and drop what we created; a second Ctrl-C must not cut this short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for service in services.values():
        service.stop()
    try:
        from django.db import connections

        connections.close_all()
    except Exception:  # noqa: BLE001 - Django may not be set up yet
        pass
    try:
        flush_redis()
        if not keep_databases:
            drop_databases()
    except Exception as exc:  # noqa: BLE001 - cleanup must not hide the real error
        print(f"cleanup: {exc}", file=sys.stderr)


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background with SIGINT ignored
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    began = time.monotonic()
    load_at_start = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    env = environment()
    os.environ.update(env | {"DB_POOL": "false"})
    services: dict[str, _procs.Service] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-checkout-"))
    try:
        _step("Re-creating shop_bench_* databases, flushing Redis DBs 4 and 5…", began)
        recreate_databases()
        flush_redis()
        _step("Migrating (manage.py migrate_all)…", began)
        migrate(env)
        import django

        django.setup()
        from django.db import connections

        _step(f"Seeding {args.users} users and {args.products} products ({STOCK:,} units each)…", began)
        tokens, product_ids = seed(users=args.users, products=args.products)
        port = _procs.free_port()
        _step(f"Starting gunicorn on 127.0.0.1:{port}, Celery worker and beat (logs in {tmp})…", began)
        services = start_services(env, tmp, port)
        wait_ready(port, services)
        host = machine()
        _step("Warming up (20 orders) and waiting for the seed events to settle…", began)
        warm, _, _ = run_open_loop(
            host="127.0.0.1", port=port, rate=4, duration=5, threads=4, request=order_request(tokens, product_ids, 0)
        )
        wait_quiet([r.order_id for r in warm if r.order_id], 60)

        pg_backends = lambda: [(pid, False) for pid in _floor.backend_pids(PG_DSN + "postgres", DATABASES)]  # noqa: E731
        postmaster = _procs.root_of("postgres")
        meter = _procs.CpuMeter(
            {
                "gunicorn": lambda: [(services["gunicorn"].pid, True)],
                "worker": lambda: [(services["worker"].pid, True)],
                "beat": lambda: [(services["beat"].pid, True)],
                "pg_bench": pg_backends,
                "pg_all": lambda: [(postmaster, True)] if postmaster else [],
                "redis": lambda: [(pid, True) for pid in _procs.pgrep("redis-server")],
                "loadgen": lambda: [(os.getpid(), False)],
            }
        )
        phases = []
        for n, name in enumerate(("low", "high"), start=1):
            rate = args.low if name == "low" else args.high or auto_high_rate(phases[0], args.low)
            if name == "high":
                time.sleep(_floor.STATS_FLUSH_SECONDS)  # let idle backends flush the low phase's stats
                counters_before = _floor.pg_counters(PG_DSN + "postgres", DATABASES)
            _step(f"{name} load: {rate:g} POST/s for {args.duration:g} s from {args.threads} threads…", began)
            phase = run_phase(
                name, rate, args, port, order_request(tokens, product_ids, n), meter, services["worker"].log_path
            )
            phases.append(phase)
            _step(
                f"  {phase['created']} placed, {phase['confirmed']} confirmed ({phase['confirmed_rate']:.2f}/s), "
                f"settled after {phase['settle_note']}",
                began,
            )
        time.sleep(_floor.STATS_FLUSH_SECONDS)
        counters_after = _floor.pg_counters(PG_DSN + "postgres", DATABASES)
        high = phases[-1]
        if not high["confirmed"]:
            raise RuntimeError("No order reached CONFIRMED under the high load; see the logs in " + str(tmp))
        per_order = {k: (counters_after[k] - counters_before[k]) / high["confirmed"] for k in _floor.COUNTERS}

        _step("Stopping the application; database floor with plain psycopg…", began)
        for service in services.values():
            service.stop()
        floor = _floor.run_floor(
            dsn=PG_DSN + "shop_bench_orders", per_order=per_order, threads=args.threads, duration=args.floor_seconds
        )
        floor["commit_latency"] = _floor.commit_latency(PG_DSN + "shop_bench_orders")
        connections.close_all()
        load_at_end = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except BaseException:
        print(f"Failed; the processes' logs are in {tmp}", file=sys.stderr)
        raise
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        cleanup(services, keep_databases=args.keep_databases)

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = _report.section(
        args=args,
        host=host,
        load=f"{load_at_start} at the start, {load_at_end} at the end",
        when=when,
        stock=STOCK,
        phases=phases,
        per_order=per_order,
        floor=floor,
    )
    print("\n" + section)
    if not args.no_write:
        _report.write_section(ROOT / "BENCHMARKS.md", section)
        print("Wrote BENCHMARKS.md (checkout section).")
    _step("Done.", began)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("Interrupted; every process the benchmark started was stopped.")
