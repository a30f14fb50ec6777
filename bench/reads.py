"""Reads benchmark: cached reads against the framework's floor, and list reads as orders grow.

    make bench-reads            (or: .venv/bin/python bench/reads.py [--sizes 10000,100000,1000000] ...)
    make bench-reads BENCH_ARGS="--hold-quiet NAME"   (holds /work/QUIET for the run)

1. Waits while ``/work/QUIET`` exists (another benchmark is measuring); with ``--hold-quiet`` it
   then creates it, waits (bounded) for the load average to fall, and removes it at the end.
   Drops and re-creates its own databases ``shop_benchreads_<context>`` and migrates them; its
   cache and broker are the caller's ``REDIS_URL``/``CELERY_BROKER_URL`` databases (Redis 0 and 1
   when unset), flushed at the start and end.
2. Loads 100,000 products, then grows the orders table to each size in turn (10 k, 100 k,
   1 M orders by default) with COPY (``tests/support/bulk.py``: skewed customers, three
   "power" customers with 600 orders each, realistic statuses and dates), then VACUUM ANALYZE.
3. Serves the app with gunicorn (2 sync workers, ``config/gunicorn.py``, the production
   settings, rate limits off) plus the bench's own URLconf (``bench/reads_urls.py``), whose
   bare JSON view is the floor.
4. At each size, for each list read (API lists and the staff admin's orders changelist with its
   date hierarchy, filters and search): p50/p99 over ``--requests`` sequential requests (one
   client, closed loop), its SQL query count and the PostgreSQL buffers those queries touch
   (the same request in-process), and the total the list reports; plus each plan's index.
5. At the last size: requests/s with ``ab`` (closed loop, ``--concurrency`` connections,
   ``--seconds`` per run, ``--rounds`` rounds, each starting one endpoint later) of the bare
   view and the anonymous cached product detail, product list and BFF page, with the gunicorn
   processes' CPU time per request from /proc (robust to the machine's other load); ab's own
   CPU time is reported, since it shares the machine. Then the same hits in-process through
   the WSGI application: CPU time per request and a cProfile of where it goes.
6. Writes the tables into BENCHMARKS.md between the ``reads`` markers.

Every process it starts is stopped on success, failure or Ctrl-C.
"""

import argparse
import contextlib
import cProfile
import http.client
import os
import platform
import pstats
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _procs, _report  # noqa: E402
from shop.contexts import CONTEXTS, database_url_variable  # noqa: E402

DB_PREFIX = "shop_benchreads_"
PG_URL = "postgres://postgres@127.0.0.1:5432"
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname="
# The caller's own Redis databases when set (sessions sharing the machine each have theirs).
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/1"
MARKS = ("<!-- reads:start -->", "<!-- reads:end -->")
QUIET = Path("/work/QUIET")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="order counts, ascending")
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=60, help="sequential requests per read and size")
    parser.add_argument("--seconds", type=int, default=4, help="ab seconds per throughput run")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved throughput rounds")
    parser.add_argument("--concurrency", type=int, default=8, help="ab connections")
    parser.add_argument("--keep-databases", action="store_true")
    parser.add_argument(
        "--hold-quiet",
        metavar="WHO",
        help=f"create {QUIET} (naming WHO) once it is free, wait up to --load-wait s for the load average to fall "
        "below --max-load, and remove it when the run ends",
    )
    parser.add_argument("--max-load", type=float, default=1.5)
    parser.add_argument("--load-wait", type=float, default=300)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    return parser.parse_args()


def environment() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL") and k != "TEST_DB_SUFFIX"}
    env.update(
        {database_url_variable(ctx): f"{PG_URL}/{DB_PREFIX}{ctx}" for ctx in CONTEXTS},
        DJANGO_SETTINGS_MODULE="bench.reads_settings",
        DJANGO_ENV="development",
        DEBUG="false",
        LOG_LEVEL="WARNING",
        RATELIMIT_ENABLED="false",
        DB_POOL="true",
        REDIS_URL=REDIS_URL,
        CELERY_BROKER_URL=BROKER_URL,
        ALLOWED_HOSTS="127.0.0.1,testserver",
        JWT_ACCESS_MINUTES="600",
        PYTHONUNBUFFERED="1",
    )
    return env


def step(message: str, began: float) -> None:
    print(f"[{time.monotonic() - began:6.1f} s] {message}", flush=True)


def load() -> str:
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


# --- databases and data ------------------------------------------------------------------------


def databases(action: str) -> None:
    import psycopg

    with psycopg.connect(PG_DSN + "postgres", autocommit=True) as conn:
        for ctx in CONTEXTS:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_PREFIX}{ctx}" WITH (FORCE)')
            if action == "create":
                conn.execute(f'CREATE DATABASE "{DB_PREFIX}{ctx}"')


def flush_redis() -> None:
    import redis

    for url in (REDIS_URL, BROKER_URL):
        redis.Redis.from_url(url).flushdb()


def vacuum(table_prefix: str, context: str) -> None:
    """VACUUM ANALYZE: fresh statistics, and a visibility map so counts can be index-only."""
    import psycopg

    with psycopg.connect(PG_DSN + DB_PREFIX + context, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE %s", [table_prefix + "%"]
        ).fetchall()
        for (table,) in tables:
            conn.execute(f'VACUUM ANALYZE "{table}"')


def principals() -> dict:
    """Credentials per caller, as HTTP headers and as the WSGI environ keys of the same headers:
    a JWT for the staff member and for a power customer (minted in-process), and an admin
    session of the staff member (the Django admin signs in with a session, not a token)."""
    from django.conf import settings
    from django.test import Client
    from rest_framework_simplejwt.tokens import AccessToken

    from apps.accounts.models import User
    from tests.support import bulk

    staff = User.objects.create(email="staff@bench.example", name="Staff", is_staff=True, is_superuser=True)
    customer = User.objects.create(id=bulk.customer_id(0), email=bulk.customer_email(0), name="Power Customer")
    browser = Client()
    browser.force_login(staff)
    session = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    headers = {
        "staff": ("Authorization", f"Bearer {AccessToken.for_user(staff)}"),
        "customer": ("Authorization", f"Bearer {AccessToken.for_user(customer)}"),
        "admin": ("Cookie", session),
    }
    return {
        who: {"http": {name: value}, "wsgi": {"HTTP_" + name.upper(): value}} for who, (name, value) in headers.items()
    }


# --- the reads measured at each size -------------------------------------------------------------


def reads(orders: dict, products: dict, deep_cursor: str) -> list[tuple[str, str, str]]:
    """(label, who, path): who is the caller whose credentials are sent (``principals``)."""
    return [
        ("Customer's orders, page 1", "customer", "/api/v1/orders"),
        ("Customer's orders, page 50", "customer", "/api/v1/orders?page=50"),
        ("Staff: all orders, page 1", "staff", "/api/v1/orders"),
        ("Staff: all orders, page 500", "staff", "/api/v1/orders?page=500"),
        ("Staff: all orders, cursor at row 5,000", "staff", f"/api/v1/orders?cursor={deep_cursor}"),
        ("Staff: status filter (SHIPPED)", "staff", "/api/v1/orders?status=SHIPPED"),
        ("Staff: search by e-mail (600 orders)", "staff", f"/api/v1/orders?email={orders['power_email']}"),
        ("Staff: order by id", "staff", f"/api/v1/orders/{orders['some_order']}"),
        ("Products: category + price filters", "staff",
         f"/api/v1/products?category={products['category']}&minPrice=50&maxPrice=300"),
        ("Products: text search", "staff", f"/api/v1/products?search={products['search']}"),
        ("Admin: orders changelist (date hierarchy: years)", "admin", "/admin/orders/order/"),
        ("Admin: changelist, status filter (SHIPPED)", "admin", "/admin/orders/order/?status__exact=SHIPPED"),
        ("Admin: changelist, one year (hierarchy: months)", "admin", "/admin/orders/order/?created_at__year=2026"),
        ("Admin: changelist, one month (hierarchy: days)", "admin",
         "/admin/orders/order/?created_at__month=6&created_at__year=2026"),
        ("Admin: search by e-mail", "admin", f"/admin/orders/order/?q={orders['power_email']}"),
    ]  # fmt: skip


def deep_cursor(size: int) -> str:
    """The nextCursor a client holds after walking 5,000 rows of the staff's order list."""
    from apps.orders import selectors
    from shop.api import pagination

    newest = selectors.orders_list(user_id=None)
    return pagination._cursor_for(list(newest.query.order_by), newest[min(5000, size // 2) - 1])


def timed_get(port: int, path: str, credentials: dict) -> tuple[float, int]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=credentials["http"])
    response = conn.getresponse()
    response.read()
    conn.close()
    return time.perf_counter() - started, response.status


def query_work(path: str, credentials: dict) -> tuple[int, int, str]:
    """(SQL queries, PostgreSQL buffers they touch, the list's total) of one request, in-process.

    Buffers (8 kB pages hit or read, from EXPLAIN (ANALYZE, BUFFERS) of each captured SELECT)
    measure the database's work without the machine's noise: a query that grows with the
    table touches more pages, however busy the CPU is.
    """
    import json

    from django.db import connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    with contextlib.ExitStack() as stack:
        captures = {ctx: stack.enter_context(CaptureQueriesContext(connections[ctx])) for ctx in CONTEXTS}
        response = Client().get(path, **credentials["wsgi"])
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    assert "/login/" not in response.get("Location", ""), path
    queries, buffers = 0, 0
    for ctx, capture in captures.items():
        for query in capture.captured_queries:
            queries += 1
            if query["sql"].lstrip().upper().startswith("SELECT"):
                with connections[ctx].cursor() as cursor:
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query["sql"])
                    plan = cursor.fetchone()[0]
                plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
                buffers += plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
    return queries, buffers, _total(response)


def _total(response) -> str:
    """The row count the list reports: the API's X-Total-Count ("10000+" when bounded), or the
    admin changelist's "N orders" ("10000+ orders" beyond the bounded paginator's limit)."""
    if "X-Total-Count" in response:
        return response["X-Total-Count"]
    found = re.search(r"(\d[\d,]*\+?) orders?\b", response.content.decode(errors="replace"))
    return found.group(1) if found else ""


def measure_size(port: int, tokens: dict, plan: list, n: int) -> dict:
    results = {}
    for label, who, path in plan:
        for _ in range(3):
            timed_get(port, path, tokens[who])
        samples, statuses = [], set()
        for _ in range(n):
            seconds, status = timed_get(port, path, tokens[who])
            samples.append(seconds)
            statuses.add(status)
        if statuses != {200}:
            raise RuntimeError(f"{label}: statuses {statuses}")
        results[label] = {
            "p50": _report.percentile(samples, 0.5) * 1000,
            "p99": _report.percentile(samples, 0.99) * 1000,
        }
        work = query_work(path, tokens[who])
        results[label]["queries"], results[label]["buffers"], results[label]["total"] = work
    return results


def plans(orders: dict, products: dict) -> list[tuple[str, str]]:
    """The index (or scan) each hot query's page uses at this size."""
    from apps.catalog import selectors as catalog
    from apps.orders import selectors as order_reads

    queries = [
        ("Customer's orders", order_reads.orders_list(user_id=orders["power_customer"])),
        ("Staff: all orders", order_reads.orders_list(user_id=None)),
        ("Staff: status filter", order_reads.orders_list(user_id=None, status="SHIPPED")),
        ("Staff: search by e-mail",
         order_reads.orders_list(user_id=None, customer_email=orders["power_email"])),
        ("Products: category + price", catalog.product_list(filters=catalog.ProductFilters(
            category=products["category"], min_price=50, max_price=300))),
        ("Products: text search", catalog.product_list(filters=catalog.ProductFilters(search=products["search"]))),
    ]  # fmt: skip
    found = []
    for label, queryset in queries:
        plan = queryset[:11].explain()
        scans = re.findall(r"((?:Index Only Scan|Index Scan|Bitmap Index Scan) (?:Backward )?(?:using|on) \w+)", plan)
        seq = re.findall(r"Seq Scan on (\w+)", plan)
        found.append((label, ", ".join(dict.fromkeys(scans)) + (f"; Seq Scan on {', '.join(seq)}" if seq else "")))
    return found


# --- throughput and profile ------------------------------------------------------------------------


def ab(port: int, path: str, seconds: int, concurrency: int, server: _procs.CpuMeter) -> dict:
    """One ab run: requests/s, and the CPU seconds the gunicorn processes spent per request
    (from /proc: a shared machine slows every request down, but hardly changes what each costs)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server.start()
    out = subprocess.run(
        ["ab", "-q", "-t", str(seconds), "-n", "10000000", "-c", str(concurrency), f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    used = server.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
    complete = int(re.search(r"Complete requests:\s+(\d+)", out).group(1))
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"rps": rps, "complete": complete, "failed": failed, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "ab_cpu": cpu, "cpu_us": used["gunicorn"] / max(complete, 1) * 1e6}  # fmt: skip


def throughput(port: int, targets: dict, args, gunicorn_pid: int) -> dict:
    """``--rounds`` rounds over every target; each round starts one target later than the
    previous one, so no target always runs first (or right after the same neighbour)."""
    server = _procs.CpuMeter({"gunicorn": lambda: [(gunicorn_pid, True)]})
    for path in targets.values():
        ab(port, path, 2, args.concurrency, server)  # warm: caches filled, workers' code paths hot
    names = list(targets)
    runs = {name: [] for name in targets}
    for round_ in range(args.rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            runs[name].append(ab(port, targets[name], args.seconds, args.concurrency, server))
    return runs


def _wsgi_environ(path: str) -> dict:
    import io

    path_info, _, query = path.partition("?")
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": path_info, "QUERY_STRING": query, "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1", "HTTP_ACCEPT": "*/*", "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http", "wsgi.version": (1, 0), "wsgi.multithread": False,
        "wsgi.multiprocess": True, "wsgi.run_once": False,
    }  # fmt: skip


def _serve(application, path: str) -> None:
    """One request through the WSGI application, as gunicorn's worker calls it."""

    def start_response(status, headers, exc_info=None):
        assert status.startswith("200"), (path, status)

    body = application(_wsgi_environ(path), start_response)
    try:
        for _ in body:
            pass
    finally:
        body.close()


def profile(targets: dict, requests: int = 2000) -> dict:
    """Cached hits in-process, through the WSGI application gunicorn serves (no HTTP, no test client):
    CPU µs per request (``process_time``, median of 5 batches), then a cProfile of the same hits:
    the share of time per package, and the functions where a hit spends more than the bare view."""
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    out = {}
    for name, path in targets.items():
        for _ in range(50):
            _serve(application, path)
        batches = []
        for _ in range(5):
            started = time.process_time()
            for _ in range(requests // 5):
                _serve(application, path)
            batches.append((time.process_time() - started) / (requests // 5) * 1e6)
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(requests // 4):
            _serve(application, path)
        prof.disable()
        stats = pstats.Stats(prof)
        shares: dict[str, float] = {}
        functions: dict[str, float] = {}
        total = 0.0
        for (filename, line, function), (_, _, tottime, _, _) in stats.stats.items():
            total += tottime
            package = _package(filename, function)
            shares[package] = shares.get(package, 0.0) + tottime
            where = f"{_short(filename)}:{line}({function})" if filename != "~" else function
            functions[where] = functions.get(where, 0.0) + tottime / (requests // 4) * 1e6
        out[name] = {
            "us": _report.percentile(batches, 0.5),
            "us_range": (min(batches), max(batches)),
            "shares": {k: v / total for k, v in sorted(shares.items(), key=lambda i: -i[1])},
            "functions": functions,
        }
    bare = out["bare"]["functions"]
    for data in out.values():
        excess = {f: us - bare.get(f, 0.0) for f, us in data["functions"].items()}
        data["excess"] = sorted(((f, us) for f, us in excess.items() if us > 0), key=lambda i: -i[1])[:6]
    return out


def _short(filename: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    if str(ROOT) in filename:
        return filename.split(str(ROOT) + "/", 1)[1]
    return filename.rsplit("/", 2)[-1] if "/" in filename else filename


def _package(filename: str, function: str) -> str:
    if filename == "~" and re.search(r"recv|send|poll|select|connect|wait", function):
        return "socket I/O (waiting for Redis/PostgreSQL)"
    if "site-packages/" in filename:
        top = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        if top == "django" and "/test/" in filename:
            return "test client (not in production)"
        return {"django_redis": "redis client", "redis": "redis client", "rest_framework": "DRF"}.get(top, top)
    if str(ROOT) in filename:
        return "shop/apps (our code)"
    return "Python stdlib and builtins"


# --- report --------------------------------------------------------------------------------------


LABELS = {
    "bare": "bare Django JSON view (floor)",
    "detail": "product detail (`/api/v1/products/{id}`)",
    "list": "product list (`/api/v1/products?limit=20`)",
    "bff": "BFF product page",
}
TARGETS = {"bare": None, "detail": 0.8, "list": 0.6, "bff": 0.5}


def _spread(values: list[float], fmt: str) -> str:
    ordered = sorted(values)
    return f"**{format(_report.percentile(ordered, 0.5), fmt)}** ({format(ordered[0], fmt)}–{format(ordered[-1], fmt)})"


def throughput_rows(runs: dict) -> list[str]:
    lines = [
        "| Endpoint | req/s per round | req/s ÷ bare's, same round: median (lowest–highest) | gunicorn CPU µs per "
        "request: median (lowest–highest) | bare's CPU ÷ this CPU, same round: median (lowest–highest) | target "
        "| failed / non-2xx | ab CPU s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    bare = runs["bare"]
    for name, target in TARGETS.items():
        r = runs[name]
        rps = [x["rps"] / bare[i]["rps"] for i, x in enumerate(r)]
        cpu = [bare[i]["cpu_us"] / x["cpu_us"] for i, x in enumerate(r)]
        per_round = " / ".join(format(x["rps"], ",.0f") for x in r)
        lines.append(
            f"| {LABELS[name]} | {per_round} | "
            + (_spread(rps, ".0%") if name != "bare" else "100 %")
            + f" | {_spread([x['cpu_us'] for x in r], ',.0f')} | "
            + (_spread(cpu, ".0%") if name != "bare" else "100 %")
            + f" | {'≥ ' + format(target, '.0%') if target else ''} | "
            f"{sum(x['failed'] for x in r)} / {sum(x['non2xx'] for x in r)} | {sum(x['ab_cpu'] for x in r):.1f} |"
        )
    return lines


def profile_rows(prof: dict) -> list[str]:
    lines = [
        "| Request | CPU µs per request, in-process: median (lowest–highest batch) | share of profiled time by "
        "package | where it spends more than the bare view (profiled µs per request) |",
        "|---|---|---|---|",
    ]
    for name, data in prof.items():
        top = ", ".join(f"{pkg} {share:.0%}" for pkg, share in list(data["shares"].items())[:6])
        low, high = data["us_range"]
        excess = "; ".join(f"`{where}` +{us:.0f}" for where, us in data["excess"]) if name != "bare" else ""
        lines.append(f"| {LABELS[name]} | **{data['us']:,.0f}** ({low:,.0f}–{high:,.0f}) | {top} | {excess} |")
    return lines


def section(args, sizes, by_size, plan_rows, runs, prof, timings, started_at, loads) -> str:
    load_start, load_end, quiet = loads
    cpu = _cpu_model()
    lines = [
        "## Reads: cached reads against the framework's floor, lists as orders grow",
        "",
        f"Command: `make bench-reads` (runs `.venv/bin/python bench/reads.py {' '.join(sys.argv[1:])}`; sizes "
        f"{args.sizes}, {args.products:,} products, {args.requests} requests per read and size, "
        f"ab {args.seconds} s × {args.rounds} rounds, {args.concurrency} connections); run "
        f"{started_at:%Y-%m-%d %H:%M} UTC.",
        f"Machine: {os.cpu_count()} × {cpu}; PostgreSQL {_pg_version()}; Python {platform.python_version()}. "
        f"Load average {load_start} at the start, {load_end} at the end ({quiet}; the machine is shared with "
        "other sessions).",
        "",
        "Setup: gunicorn 2 sync workers with `config/gunicorn.py` and multiprocess metrics as in production, "
        "production settings (`DEBUG=false`, `DB_POOL=true`, rate limits off), the bench's own URLconf adding a "
        "bare JSON view (`bench/reads_urls.py`); own databases "
        f"`{DB_PREFIX}*`, own Redis databases. Data loaded with COPY (`tests/support/bulk.py`): "
        f"{args.products:,} products ({timings['products']:.0f} s), orders grown step by step "
        f"({', '.join(f'{s:,} in {timings[s]:.0f} s' for s in sizes)}), one customer per ten orders, skewed, "
        "plus three power customers with 600 orders each; 1–3 items per order; dates over two years; "
        "VACUUM ANALYZE after each step.",
        "",
        "### Cached reads: requests/s and CPU per request against the bare view (anonymous, cache hits)",
        "",
        f"`ab -t {args.seconds} -c {args.concurrency}` (closed loop: {args.concurrency} connections, each sends the "
        "next request when the previous answer arrives; ab runs on the same 2 cores, its CPU time is listed). "
        f"{args.rounds} rounds over the four endpoints, each round starting one endpoint later; every ratio "
        "compares an endpoint with the bare view's run of the same round, and the median ratio is the result. "
        "Requests/s is what the targets name, but on a shared 2-core machine it moves with everyone else's load; "
        "the gunicorn workers' CPU time per request (utime + stime from `/proc`, master and workers, over each "
        "ab run ÷ its completed requests) hardly does, so both are listed: the CPU ratio is the capacity ratio "
        "the machine would show if nothing else ran on it. Redis's own CPU is not in it (a hit is mostly "
        "answered from the worker's 1 s local copy).",
        "",
        *throughput_rows(runs),
        "",
        "Where a cached hit's time goes: the same requests in-process, through the WSGI application gunicorn "
        "serves (middleware included, no HTTP parsing, no test client), CPU time per request; then cProfile "
        "of the same hits (its overhead inflates the µs, the shares and differences are what count):",
        "",
        *profile_rows(prof),
        "",
        "### Lists as the orders table grows",
        "",
        f"Each cell: p50 / p99 ms over {args.requests} sequential requests (one client, closed loop, after 3 "
        "warm-ups; API reads with a JWT, admin pages with a staff session; staff reads are never cached, so "
        "product reads are measured as staff) · SQL queries per request · PostgreSQL buffers those queries touch "
        "(8 kB pages hit or read, from EXPLAIN (ANALYZE, BUFFERS) of the same request run in-process: the "
        "database's work, free of the machine's noise) · the total the list reports (`+`: a lower bound, the "
        "count stopped at `PAGINATION_COUNT_LIMIT`).",
        "",
        "| Read | " + " | ".join(f"{s:,} orders" for s in sizes) + " | largest ÷ smallest: p99 · queries · buffers |",
        "|---|" + "---|" * (len(sizes) + 1),
    ]
    for label in by_size[sizes[0]]:
        cells = []
        for size in sizes:
            cell = by_size[size][label]
            total = f" · total {cell['total']}" if cell["total"] else ""
            cells.append(
                f"{cell['p50']:.1f} / {cell['p99']:.1f} · {cell['queries']} q · {cell['buffers']:,} buf{total}"
            )
        first, last = by_size[sizes[0]][label], by_size[sizes[-1]][label]
        ratios = [last[k] / first[k] if first[k] else float("nan") for k in ("p99", "queries", "buffers")]
        lines.append(f"| {label} | " + " | ".join(cells) + " | " + " · ".join(f"{x:.2f}" for x in ratios) + " |")
    products = [label for label in by_size[sizes[0]] if label.startswith("Products")]
    drift = [by_size[sizes[-1]][label]["p99"] / by_size[sizes[0]][label]["p99"] for label in products]
    lines += [
        "",
        f"The product reads never touch the orders table ({args.products:,} products throughout): their p99 ratios "
        f"({', '.join(f'{x:.2f}' for x in drift)}) are the machine's own drift during the run, the yardstick for "
        "the latency ratios above; the buffer counts are not subject to it. A list whose total is exact at the "
        "smallest size and bounded (`+`) at the larger ones counts more rows there, up to the limit and no "
        "further: its buffers grow until the count reaches the limit, then stay flat.",
        "",
        f"### Plans at {sizes[-1]:,} orders (EXPLAIN of each list page)",
        "",
        "| Query | Plan uses |",
        "|---|---|",
    ]
    lines += [f"| {label} | {used} |" for label, used in plan_rows]
    return "\n".join(lines)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _pg_version() -> str:
    import psycopg

    with psycopg.connect(PG_DSN + "postgres") as conn:
        return conn.execute("SHOW server_version").fetchone()[0].split()[0]


# --- main ----------------------------------------------------------------------------------------


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    args = parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if shutil.which("ab") is None:
        sys.exit("ab not found: apt-get install apache2-utils")
    signal.signal(signal.SIGTERM, _interrupt)
    while QUIET.exists():
        print(f"waiting: {QUIET} exists ({QUIET.read_text(errors='replace').strip()[:80]})", flush=True)
        time.sleep(30)
    held = None
    if args.hold_quiet:
        held = f"{args.hold_quiet}: make bench-reads, from {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
        QUIET.write_text(held)
    tmp = Path(tempfile.mkdtemp(prefix="bench-reads-"))
    gunicorn = None
    try:
        quiet = _wait_for_load(args) if held else "the bench ran without holding `/work/QUIET`"
        began, started_at, load_start = time.monotonic(), datetime.now(UTC), load()
        env = environment()
        # Metrics as in production (gunicorn.conf, multiprocess files); the bench process has its own folder.
        web_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prometheus-web")}
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp / "prometheus-bench")
        for folder in ("prometheus-web", "prometheus-bench"):
            (tmp / folder).mkdir()
        databases("create")
        flush_redis()
        subprocess.run([sys.executable, "manage.py", "migrate_all", "-v", "0"], cwd=ROOT, env=env, check=True)
        step("databases migrated", began)
        # This process loads millions of rows: no pool, and no 10 s statement timeout on a COPY.
        os.environ.update({**env, "DB_POOL": "false", "DB_STATEMENT_TIMEOUT_MS": "600000"})
        import django

        django.setup()
        from apps.catalog import facade as catalog
        from apps.inventory import services as inventory
        from tests.support import bulk

        tokens = principals()
        timings = {}
        t = time.monotonic()
        products = bulk.products_load(args.products)
        vacuum("catalog_", "catalog")
        timings["products"] = time.monotonic() - t
        step(f"{args.products:,} products loaded in {timings['products']:.0f} s", began)

        port = _procs.free_port()
        gunicorn = _procs.Service(
            "gunicorn",
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-c", "config/gunicorn.py",
             "--bind", f"127.0.0.1:{port}", "--workers", "2", "--timeout", "60", "--no-control-socket"],
            web_env, ROOT, tmp / "gunicorn.log",
        ).start()  # fmt: skip
        _wait_ready(port, gunicorn)

        by_size, loaded, orders = {}, 0, {}
        for size in sizes:
            t = time.monotonic()
            step_data = bulk.orders_load(size - loaded, seed=size, customers=size // 10, power=loaded == 0)
            orders = orders or step_data
            orders["some_order"] = step_data["some_order"]
            vacuum("orders_", "orders")
            timings[size], loaded = time.monotonic() - t, size
            step(f"{size:,} orders ({timings[size]:.0f} s to load and vacuum)", began)
            by_size[size] = measure_size(port, tokens, reads(orders, products, deep_cursor(size)), args.requests)
            step(f"{size:,} orders measured", began)
        plan_rows = plans(orders, products)

        product_id = catalog.product_ids_list()[0]
        inventory.stock_seed(quantities={product_id: 100})
        targets = {
            "bare": "/bench/bare",
            "detail": f"/api/v1/products/{product_id}",
            "list": "/api/v1/products?limit=20",
            "bff": f"/api/v1/bff/products/{product_id}/complete",
        }
        runs = throughput(port, targets, args, gunicorn.pid)
        step("throughput measured", began)
        prof = profile(targets)
        step("profiled", began)
        text = section(args, sizes, by_size, plan_rows, runs, prof, timings, started_at, (load_start, load(), quiet))
        print(text)
        if not args.no_write:
            _report.write_section(ROOT / "BENCHMARKS.md", text, *MARKS)
            step("BENCHMARKS.md written", began)
        return 0
    finally:
        if gunicorn is not None:
            gunicorn.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        flush_redis()
        if not args.keep_databases:
            databases("drop")
        shutil.rmtree(tmp, ignore_errors=True)
        if held is not None and QUIET.exists() and QUIET.read_text(errors="replace") == held:
            QUIET.unlink()


def _wait_for_load(args) -> str:
    """Holding QUIET, wait for what others started before it to finish (bounded: QUIET is shared)."""
    deadline = time.monotonic() + args.load_wait
    while os.getloadavg()[0] >= args.max_load and time.monotonic() < deadline:
        print(f"holding {QUIET}; waiting for the load average ({load()}) to fall below {args.max_load}", flush=True)
        time.sleep(15)
    reached = "reached" if os.getloadavg()[0] < args.max_load else f"not reached after {args.load_wait:.0f} s"
    return (
        f"the bench held `/work/QUIET` for the whole run, after waiting for a load average below {args.max_load} "
        f"({reached})"
    )


def _wait_ready(port: int, service, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.alive():
            raise RuntimeError(f"gunicorn exited:\n{service.log_tail()}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/bench/bare")
            if conn.getresponse().status == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"gunicorn not ready after {timeout:.0f} s:\n{service.log_tail()}")


if __name__ == "__main__":
    sys.exit(main())
