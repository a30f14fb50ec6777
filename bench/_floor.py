"""The database floor: what one order costs PostgreSQL, replayed by plain psycopg.

``pg_stat_database`` deltas over the bench databases give commits and rows inserted,
updated and deleted per confirmed order. The floor then performs exactly those writes,
one statement per row, in exactly that many transactions per "order", from the same number
of threads, with nothing else in between: no HTTP, no ORM, no broker. Our throughput as a
fraction of it says how much of the cost is the database's and how much is ours.

PostgreSQL 15 backends flush their statistics at most once a second, and an idle backend
up to ``STATS_FLUSH_SECONDS`` later, hence the pause before each reading.
"""

import math
import random
import threading
import time
from collections import deque

import psycopg

STATS_FLUSH_SECONDS = 11.0
COUNTERS = ("xact_commit", "tup_inserted", "tup_updated", "tup_deleted", "sessions")
PAYLOAD = "x" * 300  # about the size of an outbox/inbox event row
POOL_ROWS = 200  # per thread: rows the updates land on


def pg_counters(dsn: str, databases: list[str]) -> dict[str, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            f"SELECT {', '.join(f'sum({c})::bigint' for c in COUNTERS)} FROM pg_stat_database WHERE datname = ANY(%s)",
            [databases],
        ).fetchone()
    return dict(zip(COUNTERS, row, strict=True))


def backend_pids(dsn: str, databases: list[str]) -> list[int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s)", [databases]).fetchall()
    return [pid for (pid,) in rows]


def _share(k: int, mean: float) -> int:
    """How many of a fractional per-order count order ``k`` does, so that the average is exact."""
    return math.floor((k + 1) * mean) - math.floor(k * mean)


def _plan(k: int, per_order: dict[str, float]) -> list[list[str]]:
    """Order ``k``: its inserts (i), updates (u) and deletes (d) spread evenly over its commits."""
    commits = max(1, _share(k, per_order["xact_commit"]))
    counts = {
        "i": _share(k, per_order["tup_inserted"]),
        "u": _share(k, per_order["tup_updated"]),
        "d": _share(k, per_order["tup_deleted"]),
    }
    ops = sorted((((n + 0.5) / count, op) for op, count in counts.items() for n in range(count)))
    transactions: list[list[str]] = [[] for _ in range(commits)]
    for position, op in ops:
        transactions[min(commits - 1, int(position * commits))].append(op)
    return transactions


def commit_latency(dsn: str, commits: int = 200) -> float:
    """Seconds per commit of a one-row insert on a single connection: mostly the WAL fsync."""
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (id bigserial PRIMARY KEY, payload text)")
        conn.commit()
        started = time.perf_counter()
        for _ in range(commits):
            conn.execute("INSERT INTO bench_commit_probe (payload) VALUES (%s)", (PAYLOAD,))
            conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_commit_probe")
        conn.commit()
    return elapsed / commits


def run_floor(*, dsn: str, per_order: dict[str, float], threads: int, duration: float) -> dict:
    """Replay ``per_order`` writes as fast as ``threads`` connections can for ``duration`` seconds."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_floor")
        conn.execute(
            "CREATE TABLE bench_floor (id bigserial PRIMARY KEY, owner int NOT NULL, payload text NOT NULL,"
            " n int NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("CREATE INDEX bench_floor_owner ON bench_floor (owner)")
    orders = [0] * threads
    commits = [0] * threads
    barrier = threading.Barrier(threads + 1)
    stop_at = [math.inf]  # set once every thread is connected and ready

    def worker(n: int) -> None:
        rng = random.Random(n)
        with psycopg.connect(dsn) as conn:
            insert = "INSERT INTO bench_floor (owner, payload) VALUES (%s, %s) RETURNING id"
            pool = [conn.execute(insert, (n, PAYLOAD)).fetchone()[0] for _ in range(POOL_ROWS)]
            deletable = deque(conn.execute(insert, (n, PAYLOAD)).fetchone()[0] for _ in range(POOL_ROWS))
            conn.commit()
            barrier.wait()
            k = 0
            while time.monotonic() < stop_at[0]:
                for ops in _plan(k, per_order):
                    if not ops:
                        conn.execute("SELECT 1")  # a read-only transaction still counts as a commit
                    for op in ops:
                        if op == "i":
                            deletable.append(conn.execute(insert, (n, PAYLOAD)).fetchone()[0])
                        elif op == "u":
                            conn.execute(
                                "UPDATE bench_floor SET n = n + 1, updated_at = now() WHERE id = %s",
                                (rng.choice(pool),),
                            )
                        elif deletable:
                            conn.execute("DELETE FROM bench_floor WHERE id = %s", (deletable.popleft(),))
                    conn.commit()
                    commits[n] += 1
                k += 1
                orders[n] += 1

    workers = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
    for thread in workers:
        thread.start()
    barrier.wait(timeout=60)
    started = time.monotonic()
    stop_at[0] = started + duration
    for thread in workers:
        thread.join(timeout=duration + 60)
    elapsed = time.monotonic() - started
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_floor")
    return {
        "orders": sum(orders),
        "seconds": elapsed,
        "orders_per_s": sum(orders) / elapsed,
        "commits_per_s": sum(commits) / elapsed,
        "threads": threads,
    }


# --- the essential-work floor ---------------------------------------------------------------------

_ESSENTIAL_SCHEMA = {
    "orders": [
        "CREATE TABLE ef_order (id uuid PRIMARY KEY, user_id uuid, status text, total numeric(12,2),"
        " created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now(), payload text)",
        "CREATE TABLE ef_item (id bigserial PRIMARY KEY, order_id uuid REFERENCES ef_order, product_id uuid,"
        " quantity int, unit_price numeric(12,2))",
        "CREATE TABLE ef_saga (id uuid PRIMARY KEY, order_id uuid UNIQUE, status text, step text,"
        " deadline timestamptz, data jsonb, updated_at timestamptz DEFAULT now())",
        "CREATE TABLE ef_history (id bigserial PRIMARY KEY, order_id uuid, to_status text,"
        " created_at timestamptz DEFAULT now())",
    ],
    "inventory": [
        "CREATE TABLE ef_stock (product_id uuid PRIMARY KEY, on_hand int, reserved int)",
        "CREATE TABLE ef_reservation (id bigserial PRIMARY KEY, order_id uuid, product_id uuid, quantity int,"
        " status text)",
        "CREATE INDEX ef_reservation_order ON ef_reservation (order_id)",
    ],
    "payments": [
        "CREATE TABLE ef_payment (id uuid PRIMARY KEY, order_id uuid, status text, amount numeric(12,2),"
        " captured numeric(12,2) DEFAULT 0, updated_at timestamptz DEFAULT now())",
        "CREATE TABLE ef_idempotency (key text PRIMARY KEY, response text, created_at timestamptz DEFAULT now())",
    ],
}
_ESSENTIAL_COMMON = [
    "CREATE TABLE ef_outbox (id uuid PRIMARY KEY, event_type text, envelope jsonb,"
    " created_at timestamptz DEFAULT now(), relay_after timestamptz DEFAULT now(), delivered_at timestamptz)",
    "CREATE INDEX ef_outbox_owed ON ef_outbox (relay_after) WHERE delivered_at IS NULL",
    "CREATE TABLE ef_inbox (id bigserial PRIMARY KEY, consumer text, event_id uuid,"
    " processed_at timestamptz DEFAULT now(), UNIQUE (consumer, event_id))",
]
ESSENTIAL_TABLES = ("ef_order", "ef_item", "ef_saga", "ef_history", "ef_stock", "ef_reservation", "ef_payment",
                    "ef_idempotency", "ef_outbox", "ef_inbox")  # fmt: skip
ENVELOPE = '{"type": "x", "data": {"orderId": "%s", "note": "' + "x" * 200 + '"}}'


def _essential_setup(dsns: dict[str, str], products: list) -> None:
    for alias, dsn in dsns.items():
        with psycopg.connect(dsn, autocommit=True) as conn:
            for table in ESSENTIAL_TABLES:
                conn.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
            for statement in _ESSENTIAL_SCHEMA[alias] + _ESSENTIAL_COMMON:
                conn.execute(statement)
            if alias == "inventory":
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO ef_stock VALUES (%s, 100000000, 0)", [(product,) for product in products]
                    )


def _essential_order(c: dict, rng: random.Random, products: list) -> None:
    """One checkout's seven transactions, as the issue lists them."""
    import uuid

    order, saga, payment = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # Sorted, as the application locks stock rows (by product id): random order deadlocks.
    lines = sorted((p, rng.randint(1, 2)) for p in rng.sample(products, 2))

    def outbox(conn, kind):
        conn.execute("INSERT INTO ef_outbox (id, event_type, envelope) VALUES (%s, %s, %s)",
                     (uuid.uuid4(), kind, ENVELOPE % order))  # fmt: skip

    def inbox(conn, consumer):
        conn.execute("INSERT INTO ef_inbox (consumer, event_id) VALUES (%s, %s)", (consumer, uuid.uuid4()))

    o, i, p = c["orders"], c["inventory"], c["payments"]
    # 1. orders: order + items + saga + history + outbox
    o.execute("INSERT INTO ef_order (id, user_id, status, total, payload) VALUES (%s, %s, 'PENDING', 42.5, %s)",
              (order, order, "x" * 200))  # fmt: skip
    with o.cursor() as cur:
        cur.executemany("INSERT INTO ef_item (order_id, product_id, quantity, unit_price) VALUES (%s, %s, %s, 9.99)",
                        [(order, prod, qty) for prod, qty in lines])  # fmt: skip
    o.execute("INSERT INTO ef_saga (id, order_id, status, step, deadline, data) VALUES (%s, %s, 'STARTED',"
              " 'RESERVE_STOCK', now() + interval '30 s', '{}')", (saga, order))  # fmt: skip
    o.execute("INSERT INTO ef_history (order_id, to_status) VALUES (%s, 'PENDING')", (order,))
    outbox(o, "reserve")
    o.commit()
    # 2. inventory: inbox + two conditional decrements + reservations + outbox
    inbox(i, "reserve")
    for prod, qty in lines:
        i.execute("UPDATE ef_stock SET reserved = reserved + %s WHERE product_id = %s AND on_hand - reserved >= %s",
                  (qty, prod, qty))  # fmt: skip
    with i.cursor() as cur:
        cur.executemany(
            "INSERT INTO ef_reservation (order_id, product_id, quantity, status) VALUES (%s, %s, %s, 'HELD')",
            [(order, prod, qty) for prod, qty in lines],
        )
    outbox(i, "reserved")
    i.commit()
    # 3. payments: inbox + idempotency record + payment + outbox
    inbox(p, "authorize")
    p.execute("INSERT INTO ef_idempotency (key, response) VALUES (%s, 'ok')", (f"{order}:authorize",))
    p.execute("INSERT INTO ef_payment (id, order_id, status, amount) VALUES (%s, %s, 'AUTHORIZED', 42.5)",
              (payment, order))  # fmt: skip
    outbox(p, "authorized")
    p.commit()
    # 4. orders: inbox + saga and order confirmed + history + outbox
    inbox(o, "authorized")
    o.execute("UPDATE ef_saga SET step = 'CAPTURE_PAYMENT', updated_at = now() WHERE id = %s", (saga,))
    o.execute("UPDATE ef_order SET status = 'CONFIRMED', updated_at = now() WHERE id = %s", (order,))
    o.execute("INSERT INTO ef_history (order_id, to_status) VALUES (%s, 'CONFIRMED')", (order,))
    outbox(o, "capture")
    o.commit()
    # 5. payments: inbox + capture + outbox
    inbox(p, "capture")
    p.execute("UPDATE ef_payment SET status = 'CAPTURED', captured = amount, updated_at = now() WHERE id = %s",
              (payment,))  # fmt: skip
    outbox(p, "captured")
    p.commit()
    # 6. inventory: inbox + stock commit
    inbox(i, "commit")
    i.execute("UPDATE ef_reservation SET status = 'COMMITTED' WHERE order_id = %s", (order,))
    for prod, qty in lines:
        i.execute("UPDATE ef_stock SET on_hand = on_hand - %s, reserved = reserved - %s WHERE product_id = %s",
                  (qty, qty, prod))  # fmt: skip
    i.commit()
    # 7. orders: inbox + saga completed
    inbox(o, "captured")
    o.execute("UPDATE ef_saga SET status = 'COMPLETED', step = 'DONE', updated_at = now() WHERE id = %s", (saga,))
    o.commit()


def run_essential_floor(*, dsns: dict[str, str], threads: int, duration: float) -> dict:
    """The writes a checkout with these guarantees really needs, in plain psycopg: seven transactions over
    the orders, inventory and payments databases per order, from ``threads`` connections each."""
    import uuid

    products = [uuid.uuid4() for _ in range(200)]
    _essential_setup(dsns, products)
    orders = [0] * threads
    barrier = threading.Barrier(threads + 1)
    stop_at = [math.inf]
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        rng = random.Random(n)
        conns = {alias: psycopg.connect(dsn) for alias, dsn in dsns.items()}
        try:
            barrier.wait()
            while time.monotonic() < stop_at[0]:
                _essential_order(conns, rng, products)
                orders[n] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            for conn in conns.values():
                conn.close()

    workers = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
    for thread in workers:
        thread.start()
    barrier.wait(timeout=60)
    started = time.monotonic()
    stop_at[0] = started + duration
    for thread in workers:
        thread.join(timeout=duration + 60)
    elapsed = time.monotonic() - started
    for dsn in dsns.values():
        with psycopg.connect(dsn, autocommit=True) as conn:
            for table in ESSENTIAL_TABLES:
                conn.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    if errors:
        raise errors[0]
    return {"orders": sum(orders), "seconds": elapsed, "orders_per_s": sum(orders) / elapsed, "threads": threads}
