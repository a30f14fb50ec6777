"""Fault campaign: thousands of orders through worker kills, broker loss, database faults and a
misbehaving provider, then proof from the databases that nothing was lost, oversold or charged twice.

    make chaos                   (or: .venv/bin/python bench/chaos.py [--orders 10000] [--rate R] ...)

1. Its own world: databases ``<prefix>_<context>`` (default ``shop_chaos``), re-created and migrated;
   two redis-servers of its own on free ports: ours, holding the cache (DB 0) and the broker (DB 1)
   as in docker-compose.yml, which it restarts; and the fake provider's (``PAYMENT_FAKE_REDIS_URL``:
   a real provider does not lose its charges when our Redis restarts). The shared Redis and other
   databases are never touched.
2. Production processes as the Makefile runs them: gunicorn, two Celery workers (as if on two
   hosts), beat (one schedule file for its whole life, as ``make beat``); the fake gateway with
   ``PAYMENT_FAKE_FAILURE_RATE`` 0.3, ``PAYMENT_FAKE_SLOW_RATE`` 0.05 (calls slower than
   ``PAYMENT_TIMEOUT_SECONDS``) and ``PAYMENT_FAKE_KEPT_FAILURE_RATE`` 0.02 (authorizations,
   captures, voids and refunds that fail inside the provider with a 5xx it replays to the key:
   settled from its search and records instead).
3. Open-loop load (``bench/_load.py``) at ``--rate`` POST/s (default: ``--load-share`` 70 % of the
   capacity ``make bench`` measured, the saturation "Orders CONFIRMED per second" read from
   BENCHMARKS.md's checkout section at run time, or ``--capacity``) until ``--orders`` were offered. Mix:
   valid cards, declines, insufficient funds, processing errors; ~30 % of orders want one of a few
   scarce products (stock 20–50); ~5 % repeat the previous POST with the same Idempotency-Key.
   Alongside, a customer cancels ~10 % (half at once, half after confirmation) and staff ship ~20 %
   of confirmed orders, over HTTP.
4. Faults on a schedule, each logged with its time: SIGKILL a worker every ``--worker-kill-every``
   seconds (a new one starts 3 s later), SIGKILL beat once (restarted 5 s later), broker Redis
   ``SHUTDOWN NOSAVE`` once, ``pg_terminate_backend`` of one context database every
   ``--pg-kill-every`` seconds (rotating), one context database refusing connections for 15 s,
   ~5 % of delivered outbox rows re-sent (``shop.events.relay.send_deliveries``), and a provider
   outage of ``--burst-seconds`` (every call fails) that opens the payment circuit breaker.
   A monitor checks every second how far past its deadline the most overdue saga is (active, or
   FAILED and still owing its undo), and the breaker's state (its shared Redis storage, as the
   ``payment_breaker_state`` gauge reads it).
5. Settles (bounded by ``settle_bound``: the longest recovery the saga is designed to take), then
   checks from the databases: orders and sagas terminal; no saga past its deadline by more than one
   sweep at any check; the breaker opened during the outage and every order placed during it
   ended; money per order, in our tables and in the provider's ledger; stock per product; no event
   owed; dead letters (listed; if any, replayed with ``manage.py events replay --all-failed``, and
   every invariant checked again after the replay); HTTP statuses; POST → terminal time; and writes
   RELIABILITY.md (``--no-write``: print only; ``--json``: also a JSON summary).

Exit status 0 only if every invariant held. Every process it starts is stopped at the end.
"""

import argparse
import http.client
import json
import logging
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _procs  # noqa: E402
from bench._load import run_open_loop  # noqa: E402
from bench._setup import PG_DSN, drop_databases, environment, migrate, recreate_databases, seed  # noqa: E402
from bench.checkout import wait_ready  # noqa: E402
from shop.contexts import CONTEXTS, WORKER_QUEUES  # noqa: E402

QUEUES = ",".join(WORKER_QUEUES)
SCARCE = {0: 20, 1: 30, 2: 40, 3: 50}  # product index → stock
TOKENS = [
    ("tok_visa", 70),
    ("tok_mastercard", 10),
    ("tok_chargeDeclined", 8),
    ("tok_chargeDeclinedInsufficientFunds", 6),
    ("tok_chargeDeclinedProcessingError", 6),
]
TERMINAL_ORDER = {"CONFIRMED", "CANCELLED", "SHIPPED", "DELIVERED"}
PAID = {"CONFIRMED", "SHIPPED", "DELIVERED"}
TERMINAL_SAGA = {"COMPLETED", "COMPENSATED"}
# A request that began waiting for a pooled connection while a database refused them fails after
# the pool's timeout (10 s), so its 503 may come that long after the database is open again.
POOL_WAIT = 15


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=10_000, help="POSTs offered (default 10,000)")
    parser.add_argument("--rate", type=float, help="offered POST/s (default: --load-share of the capacity)")
    parser.add_argument("--capacity", type=float,
                        help="confirmed orders/s at saturation (default: read from BENCHMARKS.md)")  # fmt: skip
    parser.add_argument("--load-share", type=float, default=0.7, help="share of the capacity offered (default 0.7)")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--worker-concurrency", type=int, default=2, help="Celery pool size of each of the two workers")
    parser.add_argument("--db-pool-max", type=int, default=3,
                        help="DB_POOL_MAX_SIZE, EVENTS_WAITING_THREADS (a shared server)")  # fmt: skip
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--products", type=int, default=60)
    parser.add_argument("--worker-kill-every", type=float, default=60.0)
    parser.add_argument("--pg-kill-every", type=float, default=90.0)
    parser.add_argument("--refuse-seconds", type=float, default=15.0)
    parser.add_argument("--refuse-context", default="inventory")
    parser.add_argument("--burst-seconds", type=float, default=30.0,
                        help="provider outage (every call fails) long enough to open the breaker")  # fmt: skip
    parser.add_argument("--fast-timers", action="store_true",
                        help="redelivery after 10 s, saga sweeps every 5 s (the short test)")  # fmt: skip
    parser.add_argument("--prefix", default="shop_chaos", help="database names: <prefix>_<context>")
    parser.add_argument("--keep-databases", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="leave RELIABILITY.md alone")
    parser.add_argument("--json", help="also write a JSON summary here")
    return parser.parse_args(argv)


def bench_capacity(path: Path = ROOT / "BENCHMARKS.md") -> tuple[float, str]:
    """The saturation "Orders CONFIRMED per second" of BENCHMARKS.md's checkout section, and its run."""
    text = path.read_text()
    section = text[text.index("<!-- checkout:start -->") : text.index("<!-- checkout:end -->")]
    header = next(line for line in section.splitlines() if line.startswith("| |"))
    row = next(line for line in section.splitlines() if "Orders CONFIRMED per second** (first POST" in line)
    columns = [c.strip() for c in header.strip("|").split("|")]
    cells = [c.strip().strip("*") for c in row.strip("|").split("|")]
    run = re.search(r"run (\d{4}-\d\d-\d\d \d\d:\d\d UTC)", section)
    return float(cells[columns.index("saturation")]), run.group(1) if run else "?"


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def utc() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S")


class Log:
    def __init__(self, began: float):
        self.began = began
        self.faults: list[tuple[str, float, str]] = []
        self.lock = threading.Lock()

    def step(self, message: str) -> None:
        print(f"[{time.monotonic() - self.began:7.1f} s] {message}", flush=True)

    def fault(self, message: str) -> None:
        with self.lock:
            self.faults.append((utc(), time.monotonic() - self.began, message))
        self.step("FAULT " + message)


# --- our own Redis servers ---------------------------------------------------------------------------


def redis_service(name: str, port: int, tmp: Path) -> _procs.Service:
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    service = _procs.Service(name, cmd, dict(os.environ), ROOT, tmp / f"{name}-{time.monotonic_ns()}.log").start()
    wait_redis(port)
    return service


def wait_redis(port: int, timeout: float = 20) -> None:
    import redis

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port).ping():
                return
        except redis.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"redis-server on {port} did not answer")


# --- production processes -------------------------------------------------------------------------


class World:
    """The processes under test, restartable one by one."""

    def __init__(self, env: dict, tmp: Path, port: int, redis_port: int, provider_port: int):
        self.env, self.tmp, self.port = env, tmp, port
        self.redis_port, self.provider_port = redis_port, provider_port
        self.services: dict[str, _procs.Service] = {}
        self.generation = Counter()

    def start(self, name: str) -> _procs.Service:
        python = sys.executable
        self.generation[name] += 1
        log = self.tmp / f"{name}-{self.generation[name]}.log"
        if name == "redis":
            service = redis_service(name, self.redis_port, self.tmp)
        elif name == "provider":
            service = redis_service(name, self.provider_port, self.tmp)
        elif name == "gunicorn":
            cmd = [python, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                   "--workers", "2", "--timeout", "30", "--graceful-timeout", "20", "--no-control-socket"]  # fmt: skip
            service = _procs.Service(name, cmd, self.env, ROOT, log).start()
        elif name.startswith("worker"):
            cmd = [python, "-m", "celery", "-A", "config", "worker", "-Q", QUEUES,
                   "--concurrency", self.env["WORKER_CONCURRENCY"], "--loglevel", "WARNING",
                   "--hostname", f"chaos-{name}-{self.generation[name]}-{os.getpid()}@%h"]  # fmt: skip
            service = _procs.Service(name, cmd, self.env, ROOT, log).start()
        elif name == "beat":
            cmd = [python, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING",
                   "--schedule", str(self.tmp / "celerybeat-schedule")]  # fmt: skip
            service = _procs.Service(name, cmd, self.env, ROOT, log).start()
        else:
            raise ValueError(name)
        self.services[name] = service
        return service

    def kill(self, name: str) -> None:
        """SIGKILL the process group: the process and its pool children die without any cleanup."""
        try:
            os.killpg(self.services[name].pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.services[name].process.wait(timeout=10)
        self.services[name].stop(timeout=1)  # closes the log file

    def stop_all(self) -> None:
        for name in ("gunicorn", "worker-a", "worker-b", "beat", "redis", "provider"):
            if name in self.services:
                self.services[name].stop()


# --- traffic -------------------------------------------------------------------------------------


def order_request(tokens: list[str], product_ids: list, seed_no: int):
    scarce = product_ids[: len(SCARCE)]
    plenty = product_ids[len(SCARCE) :]
    names, weights = zip(*TOKENS, strict=True)

    def body_and_key(base: int):
        rng = random.Random(seed_no * 1_000_003 + base)
        if rng.random() < 0.3:
            products = [rng.choice(scarce)] + rng.sample(plenty, rng.randint(0, 1))
        else:
            products = rng.sample(plenty, rng.randint(1, 3))
        body = {
            "items": [{"productId": str(pid), "quantity": rng.randint(1, 2)} for pid in products],
            "shippingAddress": {
                "street": "1 Main St", "city": "Springfield", "state": "IL", "zipCode": "62701", "country": "USA",
            },
            "shippingMethod": "standard",
            "payment": {"method": "card", "token": rng.choices(names, weights)[0]},
        }  # fmt: skip
        return body, rng.randrange(len(tokens)), str(uuid.UUID(int=rng.getrandbits(128)))

    def request(index: int):
        repeat = index > 0 and random.Random(seed_no * 7919 + index).random() < 0.05
        body, user, key = body_and_key(index - 1 if repeat else index)
        return "/api/v1/orders", body, {"Authorization": f"Bearer {tokens[user]}", "Idempotency-Key": key}

    return request


def http_post(port: int, path: str, token: str, body: dict | None = None) -> tuple[int | str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=json.dumps(body or {}).encode(),
                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})  # fmt: skip
        response = conn.getresponse()
        return response.status, response.read()[:300].decode(errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        return f"connection ({type(exc).__name__})", ""
    finally:
        conn.close()


class Customers:
    """Customers cancelling and staff shipping over HTTP, chosen per order by a seeded coin."""

    def __init__(self, port: int, token_of_user: dict, staff_token: str, log: Log):
        self.port, self.token_of_user, self.staff_token, self.log = port, token_of_user, staff_token, log
        self.stop = threading.Event()
        self.statuses: Counter = Counter()
        self.errors: list[tuple[float, str, str, str]] = []  # (monotonic, kind, status, body)
        self.cancel_after: dict = {}
        self.ship: dict = {}
        self.seen_since = None

    def _call(self, kind: str, path: str, token: str, body=None) -> None:
        status, text = http_post(self.port, path, token, body)
        self.statuses[(kind, str(status))] += 1
        if not isinstance(status, int) or status >= 500:
            self.errors.append((time.monotonic(), kind, str(status), text))

    def _tick(self) -> None:
        from apps.orders.models import Order
        from apps.orders.saga.models import CheckoutSaga

        rows = Order.objects.order_by("created_at")
        if self.seen_since is not None:
            rows = rows.filter(created_at__gt=self.seen_since)
        for order_id, user_id, created in rows.values_list("id", "user_id", "created_at")[:500]:
            self.seen_since = created
            coin = random.Random(order_id.int).random()
            token = self.token_of_user[user_id]
            if coin < 0.05:
                self._call("cancel (saga running)", f"/api/v1/orders/{order_id}/cancel", token)
            elif coin < 0.10:
                self.cancel_after[order_id] = token
            elif coin < 0.30:
                self.ship[order_id] = True
        waiting = list(self.cancel_after) + list(self.ship)
        if not waiting:
            return
        status = dict(Order.objects.filter(id__in=waiting).values_list("id", "status"))
        completed = set(
            CheckoutSaga.objects.filter(order_id__in=waiting, status="COMPLETED").values_list("order_id", flat=True)
        )
        for order_id in list(self.cancel_after):
            if status.get(order_id) == "CONFIRMED":
                self._call("cancel (confirmed)", f"/api/v1/orders/{order_id}/cancel", self.cancel_after.pop(order_id))
            elif status.get(order_id) in TERMINAL_ORDER:
                self.cancel_after.pop(order_id)
        for order_id in list(self.ship):
            if status.get(order_id) == "CONFIRMED" and order_id in completed:
                self.ship.pop(order_id)
                self._call("ship (staff)", f"/api/v1/orders/{order_id}/ship", self.staff_token,
                           {"trackingNumber": f"CHAOS-{order_id.hex[:10]}"})  # fmt: skip
            elif status.get(order_id) in TERMINAL_ORDER - {"CONFIRMED"}:
                self.ship.pop(order_id)

    def run(self) -> None:
        from django.db import connections

        while not self.stop.wait(1.0):
            try:
                self._tick()
            except Exception as exc:  # noqa: BLE001 - a database fault must not end the campaign
                self.statuses[("actor database error", type(exc).__name__)] += 1
                connections.close_all()


class Monitor:
    """Every second: how far past its deadline the most overdue active saga is, and the state of the
    payment circuit breaker (its shared Redis storage, what the ``payment_breaker_state`` gauge reads)."""

    def __init__(self, sweep_seconds: float):
        self.stop = threading.Event()
        self.sweep_seconds = sweep_seconds
        self.checks = 0
        self.worst = 0.0
        self.worst_saga = ""
        self.late: list[tuple[float, float, str]] = []  # (monotonic, seconds overdue, saga) beyond one sweep
        self.breaker: list[tuple[float, str]] = []  # (monotonic, state) at each change seen
        self.sessions = 0

    def _overdue(self) -> None:
        from django.utils import timezone

        from apps.orders.saga.models import CheckoutSaga

        oldest = (
            CheckoutSaga.objects.filter(status__in=["STARTED", "COMPENSATING", "FAILED"], deadline__isnull=False)
            .order_by("deadline")
            .values_list("deadline", "order_id", "status", "current_step", "step_attempts")
            .first()
        )
        self.checks += 1
        if oldest is None:
            return
        late = (timezone.now() - oldest[0]).total_seconds()
        saga = f"order {oldest[1]} {oldest[2]} {oldest[3]} attempt {oldest[4]}"
        if late > self.worst:
            self.worst, self.worst_saga = late, f"{utc()}: {saga}"
        if late > self.sweep_seconds:
            self.late.append((time.monotonic(), late, saga))

    def _breaker(self) -> None:
        """The state key in the breaker's Redis storage (pybreaker would answer "closed" while Redis
        is down; a missing key is what every process reads as closed)."""
        from django.conf import settings

        from apps.payments.gateway.resilience import BREAKER_NAME, _redis

        raw = _redis(settings.REDIS_URL).get(f"shop:{BREAKER_NAME}:pybreaker:state")
        state = raw.decode() if raw else "closed (no state key)"
        if not self.breaker or self.breaker[-1][1] != state:
            self.breaker.append((time.monotonic(), state))

    def opened(self, window: list[float]) -> bool:
        """Was the breaker open during [start, end]: opened in it, or still open from before it
        began (the drill's random provider failures can open it first; it then stays open into
        the outage, which is what the check wants to see). Only changes are recorded."""
        before = [state for at, state in self.breaker if at < window[0]]
        during = [state for at, state in self.breaker if window[0] <= at <= window[1]]
        return before[-1:] == ["open"] or "open" in during

    def breaker_story(self, origin: float) -> str:
        changes = ", ".join(f"{state} at +{at - origin:.0f} s" for at, state in self.breaker[1:]) or "no change"
        return f"payment circuit breaker (checked every second): {changes}"

    def run(self) -> None:
        from django.db import connections

        tick = 0
        while not self.stop.wait(1.0):
            tick += 1
            for probe in (self._overdue, self._breaker):
                try:
                    probe()
                except Exception:  # noqa: BLE001 - a fault may have ended the session; next second again
                    connections.close_all()
            if tick % 5:
                continue
            try:
                with connections["orders"].cursor() as cursor:
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE %s",
                        [connections["orders"].settings_dict["NAME"].removesuffix("_orders") + "\\_%"],
                    )
                    self.sessions = max(self.sessions, cursor.fetchone()[0])
            except Exception:  # noqa: BLE001
                connections.close_all()


# --- faults --------------------------------------------------------------------------------------


def _admin():
    """A session on the server's ``postgres`` database; retried while the shared server is full."""
    import psycopg

    for attempt in range(10):
        try:
            return psycopg.connect(PG_DSN + "postgres", autocommit=True)
        except psycopg.OperationalError:
            if attempt == 9:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def pg_terminate(database: str) -> int:
    with _admin() as conn:
        return conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            [database],
        ).fetchone()[0]


def allow_connections(database: str, allow: bool) -> None:
    with _admin() as conn:
        conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {"true" if allow else "false"}')


class Duplicates:
    """Re-send ~5 % of the outbox rows sent since the last round, as a broker redelivery would."""

    def __init__(self):
        self.since = None
        self.sent = 0

    def round(self) -> int:
        from django.db import OperationalError, connections
        from django.utils import timezone

        from shop.events import bus
        from shop.events.relay import send_deliveries
        from shop.events.store import outbox_model

        now = timezone.now()
        by_queue: dict[str, list] = defaultdict(list)
        for alias in CONTEXTS:
            # Committed rows leave by the fast path (no write back): every row is "sent" once committed.
            rows = outbox_model(alias).objects.using(alias).filter(created_at__lte=now)
            if self.since is not None:
                rows = rows.filter(created_at__gt=self.since)
            try:
                rows = list(rows.values_list("event_type", "envelope"))
            except OperationalError:  # this context's database refuses connections now: next round
                connections[alias].close()
                continue
            for event_type, envelope in rows:
                if random.random() < 0.05:
                    for sub in bus.subscribers_for(event_type):
                        by_queue[sub.queue].append((sub.consumer, envelope))
        for queue, deliveries in by_queue.items():
            for start in range(0, len(deliveries), 50):
                send_deliveries(queue, deliveries[start : start + 50])
        self.since = now
        count = sum(len(d) for d in by_queue.values())
        self.sent += count
        return count


def schedule(args, load_seconds: float) -> list[tuple[float, str, str]]:
    """(offset in seconds from the start of the load, action, argument), in time order."""
    plan = []
    outage_at = max(0.0, min(load_seconds * 0.75, load_seconds - args.burst_seconds))
    t, n = args.worker_kill_every / 2, 0
    while t < load_seconds:
        plan.append((t, "kill worker", "worker-a" if n % 2 == 0 else "worker-b"))
        plan.append((t + 3, "start worker", "worker-a" if n % 2 == 0 else "worker-b"))
        t, n = t + args.worker_kill_every, n + 1
    t, n = args.pg_kill_every * 2 / 3, 0
    while t < load_seconds:
        plan.append((t, "terminate backends", CONTEXTS[n % len(CONTEXTS)]))
        t, n = t + args.pg_kill_every, n + 1
    plan += [
        (load_seconds * 0.2, "kill beat", "beat"),
        (load_seconds * 0.2 + 5, "start beat", "beat"),
        (load_seconds * 0.4, "restart redis", "redis"),
        (load_seconds * 0.6, "refuse connections", args.refuse_context),
        (load_seconds * 0.6 + args.refuse_seconds, "allow connections", args.refuse_context),
        (outage_at, "provider outage", ""),
        (outage_at + args.burst_seconds, "provider back", ""),
    ]
    t = min(20.0, load_seconds / 3)
    while t < load_seconds:
        plan.append((t, "duplicate deliveries", ""))
        t += 20.0
    plan.append((load_seconds * 0.95, "duplicate deliveries", ""))
    return sorted(plan)


class Faults:
    def __init__(self, args, world: World, log: Log, prefix: str, monitor: Monitor):
        self.args, self.world, self.log, self.prefix, self.monitor = args, world, log, prefix, monitor
        self.stop = threading.Event()
        self.outage: list[float] = []  # [start, end] monotonic
        self.refusing: list[list[float]] = []  # [start, end] monotonic windows
        self.duplicates = Duplicates()
        self.errors: list[str] = []
        self.load_began = time.monotonic()

    def act(self, action: str, target: str) -> None:
        if action == "kill worker":
            self.world.kill(target)
            self.log.fault(f"SIGKILL {target} (process group)")
        elif action == "start worker" or action == "start beat":
            self.world.start(target)
            self.log.fault(f"started a new {target}")
        elif action == "kill beat":
            self.world.kill("beat")
            self.log.fault("SIGKILL beat")
        elif action == "restart redis":
            import redis

            port = self.world.redis_port
            dbs = {"cache": redis.Redis(port=port, db=0), "broker": redis.Redis(port=port, db=1)}
            before = ", ".join(f"{name} DB {db.connection_pool.connection_kwargs['db']} {db.dbsize()} keys"
                               for name, db in dbs.items())  # fmt: skip
            for db in dbs.values():  # proof that each DB was emptied, whatever is written after the restart
                db.set("chaos:marker", 1)
            try:
                dbs["cache"].shutdown(nosave=True)
            except redis.ConnectionError:
                pass
            self.world.services["redis"].process.wait(timeout=10)
            self.world.services["redis"].stop(timeout=1)
            began = time.monotonic()
            self.world.start("redis")
            took = time.monotonic() - began
            kept = [name for name, db in dbs.items() if db.exists("chaos:marker")]
            self.log.fault(
                f"Redis (cache and broker) SHUTDOWN NOSAVE with {before}; started again in {took:.1f} s: "
                + (f"NOT EMPTIED: {kept} kept a marker key" if kept else "cache and broker DBs empty (a marker key "
                   "set in each just before is gone): every cache entry and queued or unacknowledged message lost")
            )  # fmt: skip
        elif action == "provider outage":
            from apps.payments.gateway import fake

            fake.begin_outage(self.args.burst_seconds)
            self.outage = [time.monotonic(), time.monotonic() + self.args.burst_seconds]
            self.log.fault(f"payment provider outage: every call fails for {self.args.burst_seconds:g} s")
        elif action == "provider back":
            from apps.payments.gateway import fake

            fake.end_outage()
            self.outage[1] = time.monotonic()
            self.log.fault(f"payment provider outage over; {self.monitor.breaker_story(self.load_began)}")
        elif action == "terminate backends":
            count = pg_terminate(f"{self.prefix}_{target}")
            self.log.fault(f"pg_terminate_backend on {self.prefix}_{target}: {count} backends")
        elif action == "refuse connections":
            allow_connections(f"{self.prefix}_{target}", False)
            count = pg_terminate(f"{self.prefix}_{target}")
            self.refusing.append([time.monotonic(), float("inf")])
            self.log.fault(f"{self.prefix}_{target} ALLOW_CONNECTIONS false (+ {count} backends terminated)")
        elif action == "allow connections":
            allow_connections(f"{self.prefix}_{target}", True)
            if self.refusing:
                self.refusing[-1][1] = time.monotonic()
            self.log.fault(f"{self.prefix}_{target} ALLOW_CONNECTIONS true")
        elif action == "duplicate deliveries":
            from django.db import connections

            connections.close_all()  # a fault may have ended this thread's sessions
            self.log.fault(f"re-sent {self.duplicates.round()} deliveries of already sent outbox rows (~5 %)")

    def run(self, plan, started: float) -> None:
        from django.db import connections

        for offset, action, target in plan:
            if self.stop.wait(max(0.0, started + offset - time.monotonic())):
                return
            try:
                self.act(action, target)
            except Exception as exc:  # noqa: BLE001 - logged; the campaign goes on
                self.errors.append(f"{action} {target}: {type(exc).__name__}: {exc}")
                self.log.step(f"fault {action} {target} failed: {exc}")
                connections.close_all()

    def finish(self) -> None:
        """Whatever the schedule left undone: every process back, every database open."""
        for window in self.refusing:
            if window[1] == float("inf"):
                allow_connections(f"{self.prefix}_{self.args.refuse_context}", True)
                window[1] = time.monotonic()
        if self.outage and self.outage[1] > time.monotonic():
            self.act("provider back", "")
        for name in ("redis", "worker-a", "worker-b", "beat"):
            if not self.world.services[name].alive():
                self.world.start(name)
                self.log.fault(f"started {name} (end of the fault schedule)")


# --- settle and checks ---------------------------------------------------------------------------


def owed_events() -> list[tuple[str, str, str, list[str]]]:
    """Outbox rows some subscriber has neither handled nor dead-lettered: (context, id, type, missing)."""
    from shop.events.relay import missing_consumers
    from shop.events.store import outbox_model

    owed = []
    for alias in CONTEXTS:
        rows = list(outbox_model(alias).objects.using(alias).filter(delivered_at__isnull=True).only("id", "event_type"))
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            missing = missing_consumers(chunk)
            owed += [
                (alias, str(r.id), r.event_type, [s.consumer for s in missing[r.id]]) for r in chunk if missing[r.id]
            ]
    return owed


def settle_bound() -> float:
    """The longest a saga can take to end after the faults stop, as the orchestrator is built:
    every attempt of a forward step (deadlines T, 2T, ... AT), then every attempt of its undo,
    then one re-ask of an undo that ran out of attempts (``_undo_retry_interval``: T × A), plus
    two sweeps and two redeliveries. The short run found the undo case: a void whose first two
    attempts met the provider outage and then the open breaker (its 30 s reset matches the step
    timeout), and whose third failed on the provider's 30 % failures, ended FAILED and landed on
    its re-ask, after the older bound (6T + sweeps) had run out."""
    from django.conf import settings

    timeout, attempts = settings.SAGA_STEP_TIMEOUT_SECONDS, settings.SAGA_MAX_STEP_ATTEMPTS
    every_attempt = timeout * attempts * (attempts + 1) / 2
    return (
        2 * every_attempt
        + timeout * attempts
        + 2 * settings.SAGA_SWEEP_SECONDS
        + 2 * settings.EVENTS_REDELIVER_AFTER_SECONDS
    )


def settle(bound: float, log: Log) -> tuple[float, bool]:
    from django.db import connections

    from apps.orders.models import Order
    from apps.orders.saga.models import CheckoutSaga

    began = time.monotonic()
    while time.monotonic() - began < bound:
        try:
            # A FAILED saga still owes its undo (re-asked by the sweep): not settled either.
            active = CheckoutSaga.objects.exclude(status__in=list(TERMINAL_SAGA)).count()
            pending = Order.objects.exclude(status__in=TERMINAL_ORDER).count()
            if active == 0 and pending == 0 and not owed_events():
                return time.monotonic() - began, True
        except Exception as exc:  # noqa: BLE001
            log.step(f"settle check failed: {exc}")
            connections.close_all()
        time.sleep(2)
    return time.monotonic() - began, False


def fake_ledger() -> dict[str, dict]:
    """The fake provider's charges (its own records, in its own Redis)."""
    from apps.payments.gateway.fake import store

    charges = {}
    for key in store().iter_keys("fakegw:charge:*"):
        charges[key.removeprefix("fakegw:charge:")] = store().get(key)
    return charges


def fake_spent_keys() -> tuple[Counter, int]:
    """The keys whose first call failed inside the fake provider (a kept 500), by the checkout action
    in the key (``order:<id>:<action>``; "other" for staff's keys), and how many calls were made
    again under a new key after one (``...:after-500:<uuid>``)."""
    from apps.payments.gateway.fake import store

    spent: Counter = Counter()
    for key in store().iter_keys("fakegw:key:*"):
        answer = store().get(key)
        if answer and "spent" in answer:
            parts = key.removeprefix("fakegw:key:").split(":")
            spent[parts[2] if parts[0] == "order" and len(parts) > 2 else "other"] += 1
    again = sum(1 for _ in store().iter_keys("fakegw:log:*:after-500:*:started"))
    return spent, again


def worst_per_saga(late: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """One row per overdue saga (its worst check), in time order."""
    worst: dict[str, tuple[float, float, str]] = {}
    for row in late:
        if row[2] not in worst or row[1] > worst[row[2]][1]:
            worst[row[2]] = row
    return sorted(worst.values())


def replay_dead_letters(env: dict, log: Log) -> dict:
    """What an operator does: ``manage.py events replay --all-failed``, with the processes' settings."""
    command = [sys.executable, "manage.py", "events", "replay", "--all-failed"]
    log.step("Dead letters found: " + " ".join(command[1:]))
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    output = (done.stdout + done.stderr).strip()
    log.step(f"replay exit {done.returncode}: {output[-500:]}")
    return {"command": " ".join(command[1:]), "exit": done.returncode, "output": output[-2000:]}


def check(initial_stock: dict, results, customers: Customers, faults: Faults, monitor: Monitor) -> dict:
    from django.db.models import Sum

    from apps.inventory.models import Reservation, StockItem
    from apps.orders.models import Order, OrderItem, OrderStatusHistory
    from apps.orders.saga.models import CheckoutSaga, SagaStepLog
    from apps.payments.models import Payment, PaymentEvent
    from shop.events.store import dead_letter_model

    checks: list[tuple[str, bool, str]] = []
    orders = {o["id"]: o for o in Order.objects.values("id", "status", "total", "created_at", "cancellation_reason")}
    sagas = {s["order_id"]: s for s in CheckoutSaga.objects.values("order_id", "status", "updated_at", "id")}
    not_terminal = [oid for oid, o in orders.items() if o["status"] not in TERMINAL_ORDER]
    checks.append(("every order terminal", not not_terminal, f"{len(orders)} orders, {len(not_terminal)} not terminal"))
    bad_sagas = [oid for oid in orders if sagas.get(oid, {}).get("status") not in TERMINAL_SAGA]
    saga_counts = Counter(s["status"] for s in sagas.values())
    checks.append(("every saga terminal (COMPLETED/COMPENSATED)", not bad_sagas,
                   ", ".join(f"{k} {v}" for k, v in sorted(saga_counts.items()))
                   + (f"; not terminal: {[str(o) for o in bad_sagas[:3]]}" if bad_sagas else "")))  # fmt: skip
    sweep = monitor.sweep_seconds
    checks.append((f"no active saga past its deadline by more than one sweep ({sweep:g} s) at any check",
                   monitor.worst <= sweep,
                   f"{monitor.checks} checks (every second); most overdue {monitor.worst:.1f} s "
                   f"({monitor.worst_saga}); "
                   f"{len(monitor.late)} checks found one over a sweep"))  # fmt: skip
    if faults.outage:
        began, ended = (datetime.fromtimestamp(time.time() - (time.monotonic() - t), UTC) for t in faults.outage)
        during = [o for o in orders.values() if began <= o["created_at"] <= ended]
        checks.append(("provider outage opened the payment circuit breaker", monitor.opened(faults.outage),
                       monitor.breaker_story(faults.load_began)))  # fmt: skip
        checks.append(("every order placed during the outage ended (and is in the checks below)",
                       all(o["status"] in TERMINAL_ORDER for o in during),
                       f"{len(during)} orders: " + ", ".join(f"{k} {v}" for k, v in sorted(
                           Counter(o["cancellation_reason"] or o["status"] for o in during).items()))))  # fmt: skip

    net = defaultdict(Decimal)
    for order_id, captured, refunded in Payment.objects.values_list("order_id", "captured_amount", "refunded_amount"):
        net[order_id] += captured - refunded
    money_bad = [oid for oid, o in orders.items() if net[oid] != (o["total"] if o["status"] in PAID else 0)]
    paid_total = sum((o["total"] for o in orders.values() if o["status"] in PAID), Decimal(0))
    checks.append(("money per order: captured − refunded = total if paid, else 0", not money_bad,
                   f"{len(money_bad)} orders wrong; paid total {paid_total}" + "".join(
                       f"; {oid} {orders[oid]['status']} total {orders[oid]['total']} net {net[oid]}"
                       for oid in money_bad[:3])))  # fmt: skip

    ledger = fake_ledger()
    order_of_ref = dict(Payment.objects.exclude(provider_reference="").values_list("provider_reference", "order_id"))
    captures_per_order = Counter()
    orphan_captures = 0
    ledger_net = Decimal(0)
    for reference, charge in ledger.items():
        captured = Decimal(charge["captured"])
        ledger_net += captured - Decimal(charge["refunded"])
        if captured:
            if reference in order_of_ref:
                captures_per_order[order_of_ref[reference]] += 1
            else:
                orphan_captures += 1
    twice = [oid for oid, n in captures_per_order.items() if n > 1]
    checks.append(("provider ledger: at most one capture per order, none unknown to us",
                   not twice and not orphan_captures,
                   f"{len(ledger)} charges, {sum(captures_per_order.values())} captured, {len(twice)} orders captured "
                   f"twice, {orphan_captures} captures without our authorization"))  # fmt: skip
    checks.append(("provider ledger net = paid orders total", ledger_net == paid_total,
                   f"ledger {ledger_net}, orders {paid_total}"))  # fmt: skip
    # An authorization nobody captured or voided holds the customer's money until the provider lets
    # it lapse: one whose answer we lost (every attempt timed out while the provider worked on).
    standing = [ref for ref, charge in ledger.items() if charge["status"] == "requires_capture"]
    spent, again = fake_spent_keys()
    recorded_from_provider = PaymentEvent.objects.filter(data__found="provider record")
    found = recorded_from_provider.exclude(type=PaymentEvent.Type.REFUNDED).count()
    refunds_found = recorded_from_provider.filter(type=PaymentEvent.Type.REFUNDED).count()
    # Authorizations we never had an answer for, found in the record and then captured by our own call:
    # their checkouts went on (one the provider had captured already is found captured, not taken).
    captured_by_us = PaymentEvent.objects.filter(type=PaymentEvent.Type.CAPTURED).exclude(data__has_key="found")
    taken = recorded_from_provider.filter(
        type=PaymentEvent.Type.AUTHORIZED, payment_id__in=captured_by_us.values("payment_id")
    ).count()
    by_action = ", ".join(f"{action} {n}" for action, n in sorted(spent.items())) or "none"
    checks.append(("provider ledger: no authorization left on a card (each captured or voided)", not standing,
                   f"{len(standing)} standing, {sum(ref not in order_of_ref for ref in standing)} of them "
                   f"unknown to us; keys spent on a replayed 5xx: {by_action}; {found} payment changes and "
                   f"{refunds_found} refunds found in the provider's record ({taken} authorizations found "
                   f"and captured by their checkout), {again} calls made again under a new key"))  # fmt: skip

    sold = defaultdict(int)
    paid_ids = [oid for oid, o in orders.items() if o["status"] in PAID]
    for product_id, quantity in (
        OrderItem.objects.filter(order_id__in=paid_ids)
        .values("product_id")
        .annotate(q=Sum("quantity"))
        .values_list("product_id", "q")
    ):
        sold[product_id] = quantity
    stock_bad, reserved_bad = [], []
    for product_id, on_hand, reserved in StockItem.objects.values_list("product_id", "on_hand", "reserved"):
        if product_id in initial_stock and on_hand + sold[product_id] != initial_stock[product_id]:
            stock_bad.append(
                f"{product_id}: initial {initial_stock[product_id]}, on hand {on_hand}, sold {sold[product_id]}"
            )
        if reserved:
            reserved_bad.append(str(product_id))
    held = Reservation.objects.filter(status="RESERVED").count()
    scarce_sold = sum(sold[pid] for pid in list(initial_stock)[: len(SCARCE)])
    checks.append(("stock: initial = on hand + units sold (paid orders)", not stock_bad,
                   f"{len(initial_stock)} products; scarce ones sold {scarce_sold} of {sum(SCARCE.values())}"
                   + (f"; {stock_bad[:3]}" if stock_bad else "")))  # fmt: skip
    checks.append(("stock: reserved = 0, no reservation held", not reserved_bad and not held,
                   f"{len(reserved_bad)} products reserved > 0, {held} reservations RESERVED"))  # fmt: skip

    owed = owed_events()
    checks.append(
        ("events: no outbox row owed to a subscriber", not owed, f"{len(owed)} owed {owed[:3] if owed else ''}")
    )
    dead = []
    for alias in CONTEXTS:
        dead += [
            (alias, *row)
            for row in dead_letter_model(alias)
            .objects.using(alias)
            .values_list("consumer", "event_type", "status", "error")
        ]
    failed = [d for d in dead if d[3] == "FAILED"]
    checks.append(("dead letters (0 expected)", not dead, f"{len(dead)}, {len(failed)} still FAILED"))

    statuses = Counter(("POST /orders", r.status) for r in results) + customers.statuses

    def busy(status, body) -> bool:  # admission control refused a checkout: allowed at any time
        return status == "503" and '"CHECKOUT_BUSY"' in (body or "")

    def allowed(at, status, body) -> bool:
        refusing = any(s - 1 <= at <= e + POOL_WAIT for s, e in faults.refusing)
        return busy(status, body) or (status == "503" and '"error"' in (body or "") and refusing)

    bad_http = [(r.status, f"+{(r.done or r.sent or 0) - faults.load_began:.1f} s", r.error_body) for r in results
                if (r.status.startswith("5") or r.status.startswith("conn") or r.status == "timeout")
                and not allowed(r.done or r.sent or 0, r.status, r.error_body)]  # fmt: skip
    bad_http += [
        (s, f"+{at - faults.load_began:.1f} s", b) for at, _, s, b in customers.errors if not allowed(at, s, b)
    ]
    refused = sum(busy(r.status, r.error_body) for r in results)
    checks.append(("HTTP: no 5xx except 503 + error envelope while a database refused connections, "
                   "and admission control's 503 CHECKOUT_BUSY", not bad_http,
                   f"{len(bad_http)} others; {refused} checkouts refused by admission control"
                   + (f": {bad_http[:3]}" if bad_http else "")))  # fmt: skip

    terminal_at = {}
    for order_id, at in (
        OrderStatusHistory.objects.filter(to_status__in=["CONFIRMED", "CANCELLED"])
        .order_by("created_at")
        .values_list("order_id", "created_at")
    ):
        terminal_at.setdefault(order_id, at)
    for order_id, saga in sagas.items():
        if saga["status"] in TERMINAL_SAGA:
            terminal_at[order_id] = max(terminal_at.get(order_id, saga["updated_at"]), saga["updated_at"])
    durations = {
        oid: (terminal_at[oid] - o["created_at"]).total_seconds() for oid, o in orders.items() if oid in terminal_at
    }
    worst_id = max(durations, key=durations.get) if durations else None
    story = []
    if worst_id is not None and worst_id in sagas:
        story = [
            (at.strftime("%H:%M:%S.%f")[:-3], step, attempt, outcome, detail[:120])
            for at, step, attempt, outcome, detail in SagaStepLog.objects.filter(
                saga_id=sagas[worst_id]["id"]
            ).values_list("created_at", "step", "attempt", "outcome", "detail")
        ]
    outcomes = Counter(o["cancellation_reason"] or o["status"] for o in orders.values())
    values = sorted(durations.values())
    return {
        "checks": checks,
        "ok": all(ok for _, ok, _ in checks),
        "orders": len(orders),
        "outcomes": dict(outcomes),
        "statuses": {f"{k[0]} {k[1]}": v for k, v in sorted(statuses.items())},
        "dead": [f"{a}: {c} {t} {s} {e[:200]}" for a, c, t, s, e in dead],
        "failed_dead": len(failed),
        "durations": {
            "p50": statistics.median(values) if values else None,
            "p99": values[int(len(values) * 0.99) - 1] if values else None,
            "max": values[-1] if values else None,
        },
        "worst": {"order": str(worst_id), "seconds": durations.get(worst_id), "story": story},
    }


# --- report --------------------------------------------------------------------------------------


def report(args, summary: dict, log: Log, meta: dict) -> str:
    lines = [
        "# Reliability: the fault campaign",
        "",
        "Written by `bench/chaos.py` (`make chaos`); only what this run measured.",
        "",
        f"- Command: `{meta['command']}`",
        f"- When: {meta['when']}; machine: {meta['machine']}; load average {meta['load']}",
        f"- Load: {meta['offered']} POSTs offered at {args.rate:g}/s open loop ({meta['load_seconds']:.0f} s; "
        f"{meta['capacity']}), "
        f"{summary['orders']} orders in the database; two Celery workers × {args.worker_concurrency} "
        f"(DB_POOL_MAX_SIZE and EVENTS_WAITING_THREADS {args.db_pool_max}; at most {meta['sessions']} PostgreSQL "
        "sessions on the campaign's databases), "
        "gunicorn × 2, beat; one Redis for the cache (DB 0) and the broker (DB 1), the fake provider's in another; "
        "fake gateway with 30 % transient failures, 5 % calls slower than the payment timeout and 2 % of "
        "authorizations, captures, voids and refunds failing inside with a 5xx it replays to the key.",
        f"- Settle: {meta['settle']:.1f} s after the load and faults ended (bound {meta['bound']:.0f} s: every "
        f"attempt of a step and of its undo, one undo re-ask, two sweeps and two redeliveries)"
        f"{'' if meta['settled'] else ' — NOT SETTLED'}.",
        f"- Overdue sagas: the most overdue active saga was checked every second from the start of the load to "
        f"the end of the settle; saga sweep every {meta['saga_sweep']:g} s. Sagas seen more than a sweep overdue: "
        f"{len(meta['late'])}"
        + "".join(
            f"; +{at:.0f} s {late:.1f} s ({saga}; faults in the {late:.0f} s before: "
            + (
                ", ".join(
                    f"+{o - meta['load_began']:.0f} s {m[:40]}"
                    for _, o, m in log.faults
                    if at + meta["load_began"] - late - 1 <= o <= at + meta["load_began"]
                )
                or "none"
            )  # fmt: skip
            + ")"
            for at, late, saga in meta["late"][:10]
        )
        + ".",
        "",
        f"## Verdict: {'every invariant held' if summary['ok'] else 'INVARIANTS BROKEN'}",
        "",
        "| invariant | held | measured |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| {name} | {'yes' if ok else '**NO**'} | {detail.replace('|', '/')} |"
        for name, ok, detail in summary["checks"]
    ]
    lines += ["", "## Faults (UTC, seconds after the start of the load)", ""]
    lines += [f"- {at} (+{offset - meta['load_began']:.0f} s) {message}" for at, offset, message in log.faults]
    if meta["fault_errors"]:
        lines += ["", "Faults that could not be applied:", ""] + [f"- {e}" for e in meta["fault_errors"]]
    lines += ["", "## Outcomes", ""]
    lines += [f"- {k}: {v}" for k, v in sorted(summary["outcomes"].items())]
    lines += ["", "## HTTP statuses", ""] + [f"- {k}: {v}" for k, v in summary["statuses"].items()]
    d = summary["durations"]
    fmt = lambda v: "n/a" if v is None else f"{v:.1f} s"  # noqa: E731
    lines += ["", "## POST → terminal state", "", f"p50 {fmt(d['p50'])}, p99 {fmt(d['p99'])}, max {fmt(d['max'])}.", ""]
    worst = summary["worst"]
    lines += [f"Worst order {worst['order']} ({fmt(worst['seconds'])}), its saga step log:", "", "```"]
    lines += [" ".join(str(x) for x in row) for row in worst["story"]] + ["```", ""]
    lines += ["## Dead letters", ""] + ([f"- {d}" for d in summary["dead"]] or ["None."]) + [""]
    replay = meta["replay"]
    if replay:
        after = replay["summary"]
        lines += [f"Replayed with `manage.py {replay['command']}` (exit {replay['exit']}):", "", "```",
                  replay["output"], "```", "",
                  f"Settled {replay['settle']:.1f} s after the replay{'' if replay['settled'] else ' — NOT SETTLED'}. "
                  f"The invariants again, after the replay: {'every one held' if after['ok'] else 'BROKEN'}.", "",
                  "| invariant | held | measured |", "| --- | --- | --- |"]  # fmt: skip
        lines += [f"| {name} | {'yes' if ok else '**NO**'} | {detail.replace('|', '/')} |"
                  for name, ok, detail in after["checks"]]  # fmt: skip
        lines += [""]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    log = Log(time.monotonic())
    load_at_start = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    tmp = Path(tempfile.mkdtemp(prefix="chaos-"))
    databases = [f"{args.prefix}_{ctx}" for ctx in CONTEXTS]
    capacity, capacity_run = (args.capacity, "--capacity") if args.capacity else bench_capacity()
    if args.rate is None:
        args.rate = round(capacity * args.load_share, 1)
    redis_port, provider_port, port = _procs.free_port(), _procs.free_port(), _procs.free_port()
    env = environment(
        args.prefix, redis_url=f"redis://127.0.0.1:{redis_port}/0", broker_url=f"redis://127.0.0.1:{redis_port}/1"
    ) | {
        "PAYMENT_GATEWAY": "fake",
        "PAYMENT_FAKE_FAILURE_RATE": "0.3",
        "PAYMENT_FAKE_SLOW_RATE": "0.05",
        "PAYMENT_FAKE_KEPT_FAILURE_RATE": "0.02",
        "PAYMENT_FAKE_REDIS_URL": f"redis://127.0.0.1:{provider_port}/0",
    }
    # Every process keeps a pool per context database (and each payments thread a connection):
    # with the defaults two workers could hold most of this shared server's 100 sessions.
    env |= {
        "WORKER_CONCURRENCY": str(args.worker_concurrency),
        "DB_POOL_MAX_SIZE": str(args.db_pool_max),
        "EVENTS_WAITING_THREADS": str(args.db_pool_max),
    }
    if args.fast_timers:
        env |= {"EVENTS_REDELIVER_AFTER_SECONDS": "10", "SAGA_SWEEP_SECONDS": "5"}
    os.environ.update(env | {"DB_POOL": "false"})
    world = World(env, tmp, port, redis_port, provider_port)
    threads: list[threading.Thread] = []
    stoppers = []
    replay = None
    try:
        world.start("redis")
        world.start("provider")
        log.step(
            f"Re-creating {', '.join(databases)}; Redis (cache, broker) :{redis_port}, provider's :{provider_port};"
            f" {args.rate:g} POST/s ({capacity:g}/s capacity × {args.load_share:g}); logs in {tmp}"
        )
        recreate_databases(databases)
        migrate(env)
        import django

        django.setup()
        logging.getLogger("pybreaker").setLevel(logging.CRITICAL)  # the monitor reads its storage itself
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.db import connections
        from rest_framework_simplejwt.tokens import AccessToken

        from apps.inventory.models import StockItem

        tokens, product_ids = seed(users=args.users, products=args.products, stock=SCARCE)
        User = get_user_model()
        token_of_user = {
            pk: tokens[int(email.removeprefix("bench").split("@")[0])]
            for pk, email in User.objects.filter(email__startswith="bench").values_list("pk", "email")
        }
        staff = User.objects.create(
            email="chaos-staff@example.com", name="Chaos Staff", is_staff=True, is_superuser=True
        )
        staff_token = str(AccessToken.for_user(staff))
        initial_stock = {pid: StockItem.objects.get(product_id=pid).on_hand for pid in product_ids}
        for name in ("gunicorn", "worker-a", "worker-b", "beat"):
            world.start(name)
        wait_ready(port, world.services, env)
        model = Path("/proc/cpuinfo").read_text().split("model name")[1].split(":")[1].splitlines()[0].strip()
        machine = f"{os.cpu_count()} CPUs, {model}"

        load_seconds = args.orders / args.rate
        plan = schedule(args, load_seconds)
        customers = Customers(port, token_of_user, staff_token, log)
        monitor = Monitor(settings.SAGA_SWEEP_SECONDS)
        faults = Faults(args, world, log, args.prefix, monitor)
        load_began = faults.load_began = time.monotonic()
        log.step(f"Load: {args.orders} POSTs at {args.rate:g}/s ({load_seconds:.0f} s), {len(plan)} scheduled faults")
        for target, stop in ((customers.run, customers.stop), (monitor.run, monitor.stop)):
            threads.append(threading.Thread(target=target, daemon=True))
            stoppers.append(stop)
        threads.append(threading.Thread(target=faults.run, args=(plan, load_began), daemon=True))
        stoppers.append(faults.stop)
        for thread in threads:
            thread.start()
        results, _, _ = run_open_loop(
            host="127.0.0.1", port=port, rate=args.rate, duration=load_seconds, threads=args.threads,
            request=order_request(tokens, product_ids, 1), drain_seconds=60,
        )  # fmt: skip
        log.step(f"Load done: {Counter(r.status for r in results)}")
        faults.stop.set()
        threads[-1].join(timeout=60)
        faults.finish()
        customers.stop.set()
        threads[0].join(timeout=60)
        bound = settle_bound()
        log.step(f"Settling (at most {bound:.0f} s)…")
        settle_seconds, settled = settle(bound, log)
        monitor.stop.set()
        log.step(f"Settled: {settled} after {settle_seconds:.1f} s; checking…")
        connections.close_all()  # ours may have been terminated by a fault
        summary = check(initial_stock, results, customers, faults, monitor)
        if summary["failed_dead"]:
            replay = replay_dead_letters(env, log)
            replay["settle"], replay["settled"] = settle(bound, log)
            connections.close_all()
            replay["summary"] = check(initial_stock, results, customers, faults, monitor)
        load_at_end = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except BaseException:
        print(f"Failed; the processes' logs are in {tmp}", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for stop in stoppers:
            stop.set()
        world.stop_all()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001
            pass
        if not args.keep_databases:
            try:
                for name in databases:
                    allow_connections(name, True)
                drop_databases(databases)
            except Exception as exc:  # noqa: BLE001
                print(f"cleanup: {exc}", file=sys.stderr)

    meta = {
        "command": "make chaos" + (f' CHAOS_ARGS="{" ".join(sys.argv[1:])}"' if sys.argv[1:] else ""),
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine,
        "load": f"{load_at_start} at the start, {load_at_end} at the end",
        "offered": len(results),
        "load_seconds": load_seconds,
        "settle": settle_seconds,
        "settled": settled,
        "bound": bound,
        "late": worst_per_saga([(at - load_began, late, saga) for at, late, saga in monitor.late]),
        "capacity": f"{args.load_share:.0%} of the {capacity:g} orders CONFIRMED per second `make bench` measured at "
        f"saturation, BENCHMARKS.md run {capacity_run}"
        if args.rate == round(capacity * args.load_share, 1)
        else f"--rate; `make bench` measured {capacity:g} orders CONFIRMED per second at saturation ({capacity_run})",
        "replay": replay,
        "sessions": monitor.sessions,
        "saga_sweep": settings.SAGA_SWEEP_SECONDS,
        "load_began": load_began - log.began,
        "fault_errors": faults.errors,
    }
    text = report(args, summary, log, meta)
    print("\n" + text)
    if not args.no_write:
        (ROOT / "RELIABILITY.md").write_text(text)
        print("Wrote RELIABILITY.md")
    if args.json:
        keep = {"ok": summary["ok"], "checks": summary["checks"], "statuses": summary["statuses"],
                "replay": replay and {k: v for k, v in replay.items() if k != "summary"} | {
                    "checks": replay["summary"]["checks"]}}  # fmt: skip
        Path(args.json).write_text(json.dumps(keep | {"faults": log.faults, "settled": settled}, default=str))
    log.step("Done: every invariant held." if summary["ok"] else "Done: INVARIANTS BROKEN (see above).")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("Interrupted; every process the campaign started was stopped.")
