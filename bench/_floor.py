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
COUNTERS = ("xact_commit", "tup_inserted", "tup_updated", "tup_deleted")
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
