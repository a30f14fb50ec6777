"""Checkout benchmark: POST /api/v1/orders → CONFIRMED → saga COMPLETED, with the production processes.

    make bench                   (or: .venv/bin/python bench/checkout.py [--high 150] [--label "..."] ...)

1. Drops and re-creates its own databases ``shop_bench_<context>``, migrates them, creates users
   (JWT access tokens minted in-process) and products with plenty of stock. Redis DB 5 is its
   cache (and the task counters), DB 4 its broker; both are flushed at the start and the end.
2. Starts gunicorn (2 sync workers), a Celery worker on every queue (``WORKER_CONCURRENCY``) and
   beat, as the Makefile does; the worker runs ``-A bench._counting``, the production app plus a
   task counter fed by Celery signals.
3. Drives open-loop loads (a fixed arrival rate each): ``low`` (an idle shop), ``saturation``
   (``--high``, more than the stack can take: its confirmed rate is the capacity), ``half`` (half
   the saturated rate: latencies) and ``slow provider`` (the saturation load again, with the fake
   gateway answering after ``--provider-latency`` ms). Each waits (bounded) for every saga to end.
4. During the saturation load (after ``--warm-up`` seconds at its rate, so that every process's
   connection pools have grown to what the load needs) it counts what a confirmed order costs:
   PostgreSQL commits, rows, new sessions (``pg_stat_database``), Celery tasks, CPU per process
   group (PostgreSQL backends of the bench databases sampled every 0.2 s, so short-lived ones
   count too).
5. Two floors with plain psycopg: a replay of exactly our writes and commits, and the
   essential-work floor (the seven transactions a checkout with these guarantees needs).
6. Writes the figures into BENCHMARKS.md between the ``checkout`` markers, and with ``--label``
   adds a row to the "what each step bought" table (kept between runs).

Every process it starts is stopped on success, failure or Ctrl-C. Nothing else is touched.
"""

import argparse
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _floor, _procs, _report  # noqa: E402
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
ESSENTIAL_DATABASES = ("orders", "inventory", "payments")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--low", type=float, default=2.0, help="idle-shop offered rate, POST/s")
    parser.add_argument("--high", type=float, default=150.0, help="saturation offered rate, POST/s")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per phase")
    parser.add_argument("--threads", type=int, default=16, help="client threads (and floor threads)")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--warm-up", type=float, default=8.0, help="seconds at --high before counting (pools)")
    parser.add_argument("--settle", type=float, default=240.0, help="max seconds to wait for sagas after a load")
    parser.add_argument("--provider-latency", type=int, default=300, help="fake gateway latency (ms), last phase")
    parser.add_argument("--floor-seconds", type=float, default=15.0)
    parser.add_argument("--quick", action="store_true", help="saturation phase only (no floors, no write)")
    parser.add_argument("--label", help="add a row to the 'what each step bought' table under this label")
    parser.add_argument("--keep-databases", action="store_true", help="leave shop_bench_* for inspection")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument(
        "--write-to", type=Path, default=ROOT / "BENCHMARKS.md", help="the BENCHMARKS.md to write (an older tree may)"
    )
    return parser.parse_args()


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _step(message: str, began: float) -> None:
    print(f"[{time.monotonic() - began:6.1f} s] {message}", flush=True)


def worker_command(python: str) -> list[str]:
    return [python, "-m", "celery", "-A", "bench._counting", "worker", "-Q", QUEUES,
            "--concurrency", str(_procs.WORKER_CONCURRENCY), "--loglevel", "WARNING",
            "--hostname", f"bench-checkout-{os.getpid()}-{time.monotonic_ns()}@%h"]  # fmt: skip


def start_services(env: dict, tmp: Path, port: int) -> dict[str, _procs.Service]:
    python = sys.executable
    specs = {
        "gunicorn": [python, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
                     "--workers", "2", "--timeout", "30", "--graceful-timeout", "20", "--no-control-socket"],
        "worker": worker_command(python),
        "beat": [python, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING",
                 "--schedule", str(tmp / "celerybeat-schedule")],
    }  # fmt: skip
    return {name: _procs.Service(name, cmd, env, ROOT, tmp / f"{name}.log").start() for name, cmd in specs.items()}


def wait_worker_ready(env: dict, timeout: float = 60) -> None:
    """The worker answers a ping over the broker (it logs nothing at WARNING)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "config", "inspect", "ping", "--timeout", "2"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode == 0 and "pong" in done.stdout:
            return
        time.sleep(0.5)
    raise RuntimeError(f"worker did not answer a ping within {timeout:.0f} s")


def wait_ready(port: int, services: dict, env: dict, timeout: float = 60) -> None:
    import http.client

    wait_worker_ready(env, timeout)
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


def task_counters() -> dict[str, dict[str, float]]:
    """What ``bench/_counting.py`` counted in the worker so far: tasks and their seconds, by task name."""
    import redis

    raw = redis.Redis.from_url(REDIS_URL).hgetall("bench:tasks")
    stats: dict[str, dict[str, float]] = {"count": {}, "seconds": {}}
    for key, value in raw.items():
        name, kind = key.decode().rsplit(":", 1)
        stats[kind][name] = float(value)
    return stats


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


def outcomes(order_ids: list[str]) -> tuple[dict, dict, dict]:
    """Per order: (created_at, status, cancellation reason); CONFIRMED time and saga COMPLETED time by order."""
    from apps.orders.models import Order, OrderStatus, OrderStatusHistory
    from apps.orders.saga.models import CheckoutSaga, SagaStatus

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
    completed = {
        str(oid): at
        for oid, at in CheckoutSaga.objects.filter(order_id__in=order_ids, status=SagaStatus.COMPLETED).values_list(
            "order_id", "updated_at"
        )
    }
    return orders, confirmed, completed


class PgSessions:
    """PostgreSQL backends of the bench databases, sampled every 0.2 s: CPU of each (short-lived ones
    too, up to their last sighting) and the ``sessions`` counter (connections opened)."""

    def __init__(self):
        self._stop = threading.Event()
        self._ticks: dict[tuple[int, int], tuple[int, int]] = {}  # (pid, start) → (first seen, last seen)
        self._thread: threading.Thread | None = None

    def _sample(self, conn) -> None:
        pids = [pid for (pid,) in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s) AND pid <> pg_backend_pid()", [DATABASES]
        ).fetchall()]  # fmt: skip
        table = _procs.processes()
        for pid in pids:
            proc = table.get(pid)
            if proc is not None:
                key = (pid, proc.start)
                first = self._ticks.get(key, (None, None))[0]
                self._ticks[key] = (proc.own if first is None else first, proc.own)

    def start(self) -> None:
        import psycopg

        self._ticks.clear()
        self._stop.clear()
        conn = psycopg.connect(PG_DSN + "postgres", autocommit=True)
        self._sample(conn)  # baseline: backends alive now count from here
        self._baseline = set(self._ticks)

        def loop():
            try:
                while not self._stop.wait(0.2):
                    self._sample(conn)
            finally:
                conn.close()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=10)
        total = 0
        for key, (first, last) in self._ticks.items():
            total += last - (first if key in self._baseline else 0)
        return total / _procs.TICK


def run_phase(name: str, rate: float, args, port: int, request, meter: _procs.CpuMeter, pg: PgSessions) -> dict:
    meter.start()
    pg.start()
    tasks_before = task_counters()
    wall_start = time.time()
    results, started, scheduled_end = run_open_loop(
        host="127.0.0.1", port=port, rate=rate, duration=args.duration, threads=args.threads, request=request
    )
    window_end = wall_start + (scheduled_end - started) + 0.2
    ids = [r.order_id for r in results if r.order_id]
    settled, running = wait_quiet(ids, args.settle)
    cpu = meter.stop()
    cpu["pg_bench"] = pg.stop()
    tasks_after = task_counters()
    orders, confirmed, completed = outcomes(ids)
    ok = [r for r in results if r.order_id]
    other = Counter(reason or status for _, status, reason in orders.values() if status != "CONFIRMED")
    ramp = wall_start + min(5.0, args.duration / 4)
    first_created = min((created for created, _, _ in orders.values()), default=None)
    span = (max(confirmed.values()) - first_created).total_seconds() if confirmed else 0
    steady = [at for at in confirmed.values() if ramp <= at.timestamp() <= window_end]
    count = lambda stats: sum(stats["count"].values())  # noqa: E731
    seconds = lambda stats: sum(stats["seconds"].values())  # noqa: E731
    return {
        "name": name,
        "rate": rate,
        "duration": args.duration,
        "scheduled": len(results),
        "created": len(ok),
        "confirmed": len(confirmed),
        "completed": len(completed),
        # Orders confirmed ÷ seconds from the first order's creation to the last confirmation: with more
        # offered than the stack takes, every order still ends, so this is the capacity.
        "confirmed_rate": len(confirmed) / span if span else 0.0,
        # Confirmations per second while the load ran (after a short ramp): lower when the web
        # processes, busy taking POSTs, leave the workers little CPU.
        "confirmed_while_loaded": len(steady) / max(window_end - ramp, 1e-9),
        "other_outcomes": ", ".join(f"{k}: {v}" for k, v in sorted(other.items())),
        "settle_note": f"{settled:.1f} s" + (f" ({running} sagas still running)" if running else ""),
        "post_latency": [r.latency for r in ok],
        "to_confirmed": [(at - orders[oid][0]).total_seconds() for oid, at in confirmed.items()],
        "to_completed": [(at - orders[oid][0]).total_seconds() for oid, at in completed.items()],
        "statuses": Counter(r.status for r in results),
        "cpu": cpu,
        "tasks": count(tasks_after) - count(tasks_before),
        "task_seconds": seconds(tasks_after) - seconds(tasks_before),
    }


def warm_up_pools(args, port: int, request, began: float) -> None:
    """A few seconds at the saturation rate before anything is counted. Each process's connection
    pools start empty and grow while the load raises the number of connections used at once
    (the payments threads, one per provider call in flight, most of all); the sessions counter
    of the saturation phase should count connections opened in steady state, not that growth."""
    _step(f"Warming the connection pools: {args.high:g} POST/s for {args.warm_up:g} s…", began)
    warm, _, _ = run_open_loop(
        host="127.0.0.1", port=port, rate=args.high, duration=args.warm_up, threads=args.threads, request=request
    )
    wait_quiet([r.order_id for r in warm if r.order_id], args.settle)


def _measured_floor(run) -> dict:
    """A floor's figures, or why there are none (e.g. PostgreSQL out of connections on a shared machine):
    the application's own figures are still worth writing."""
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 - reported in the table instead
        return {"orders_per_s": None, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}


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
        # The interpreter's build moves every Python process's CPU by a fifth (docs/performance.md).
        "python": f"{platform.python_version()} ({os.path.realpath(sys._base_executable)})",
    }


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
    env = environment() | {"BENCH_COUNTER_URL": REDIS_URL}
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
        wait_ready(port, services, env)
        host = machine()
        _step("Warming up (20 orders) and waiting for the seed events to settle…", began)
        warm, _, _ = run_open_loop(
            host="127.0.0.1", port=port, rate=4, duration=5, threads=4, request=order_request(tokens, product_ids, 0)
        )
        wait_quiet([r.order_id for r in warm if r.order_id], 60)

        postmaster = _procs.root_of("postgres")
        meter = _procs.CpuMeter(
            {
                "gunicorn": lambda: [(services["gunicorn"].pid, True)],
                "worker": lambda: [(services["worker"].pid, True)],
                "beat": lambda: [(services["beat"].pid, True)],
                "pg_all": lambda: [(postmaster, True)] if postmaster else [],
                "redis": lambda: [(pid, True) for pid in _procs.pgrep("redis-server")],
                "loadgen": lambda: [(os.getpid(), False)],
            }
        )
        pg = PgSessions()
        phases: dict[str, dict] = {}
        per_order: dict[str, float] = {}

        def phase(name: str, rate: float, seed_no: int) -> dict:
            _step(f"{name}: {rate:g} POST/s for {args.duration:g} s from {args.threads} threads…", began)
            result = run_phase(name, rate, args, port, order_request(tokens, product_ids, seed_no), meter, pg)
            _step(
                f"  {result['created']} placed, {result['confirmed']} confirmed ({result['confirmed_rate']:.1f}/s "
                f"while loaded), {result['completed']} completed, {result['tasks']} tasks; settled after "
                f"{result['settle_note']}",
                began,
            )
            return result

        if not args.quick:
            phases["low"] = phase("low", args.low, 1)
        before_warm_up = _floor.pg_counters(PG_DSN + "postgres", DATABASES)
        warm_up_pools(args, port, order_request(tokens, product_ids, 5), began)
        time.sleep(_floor.STATS_FLUSH_SECONDS)  # let idle backends flush the earlier stats
        counters_before = _floor.pg_counters(PG_DSN + "postgres", DATABASES)
        grew = counters_before["sessions"] - before_warm_up["sessions"]
        _step(f"  the pools grew by about {grew} sessions (the statistics lag a few seconds)", began)
        phases["saturation"] = phase("saturation", args.high, 2)
        time.sleep(_floor.STATS_FLUSH_SECONDS)
        counters_after = _floor.pg_counters(PG_DSN + "postgres", DATABASES)
        saturation = phases["saturation"]
        if not saturation["confirmed"]:
            raise RuntimeError("No order reached CONFIRMED under load; see the logs in " + str(tmp))
        per_order = {
            key: (counters_after[key] - counters_before[key]) / saturation["confirmed"] for key in _floor.COUNTERS
        }
        if not args.quick:
            half_rate = round(max(saturation["confirmed_rate"] / 2, args.low), 1)
            phases["half"] = phase("half", half_rate, 3)
            _step(f"Restarting the worker with the fake gateway at {args.provider_latency} ms…", began)
            services["worker"].stop()
            slow_env = env | {"PAYMENT_FAKE_LATENCY_MS": str(args.provider_latency)}
            services["worker"] = _procs.Service(
                "worker", worker_command(sys.executable), slow_env, ROOT, tmp / "worker-slow.log"
            ).start()
            wait_worker_ready(env)
            phases["slow"] = phase(f"slow provider ({args.provider_latency} ms)", args.high, 4)

        _step("Stopping the application; database floors with plain psycopg…", began)
        for service in services.values():
            service.stop()
        connections.close_all()
        floor = essential = None
        if not args.quick:
            floor = _measured_floor(
                lambda: _floor.run_floor(
                    dsn=PG_DSN + "shop_bench_orders", per_order=per_order, threads=args.threads,
                    duration=args.floor_seconds,
                )
            )  # fmt: skip
            essential = _measured_floor(
                lambda: _floor.run_essential_floor(
                    dsns={alias: PG_DSN + f"shop_bench_{alias}" for alias in ESSENTIAL_DATABASES},
                    threads=args.threads,
                    duration=args.floor_seconds,
                )
            )
        load_at_end = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except BaseException:
        print(f"Failed; the processes' logs are in {tmp}", file=sys.stderr)
        raise
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        cleanup(services, keep_databases=args.keep_databases)

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "make bench" + (f' BENCH_ARGS="{" ".join(sys.argv[1:])}"' if sys.argv[1:] else "")
    load = f"{load_at_start} at the start, {load_at_end} at the end"
    if args.quick:
        print(_report.quick_summary(saturation, per_order, host, load))
        return 0
    section = _report.section(
        command=command, args=args, host=host, load=load, when=when, stock=STOCK,
        phases=phases, per_order=per_order, floor=floor, essential=essential,
    )  # fmt: skip
    print("\n" + section)
    if not args.no_write:
        path = args.write_to
        _report.write_section(path, section)
        if args.label:
            _report.add_step(path, label=args.label, when=when, phases=phases, per_order=per_order, load=load,
                             essential=essential)  # fmt: skip
        print("Wrote BENCHMARKS.md (checkout section).")
    _step("Done.", began)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("Interrupted; every process the benchmark started was stopped.")
