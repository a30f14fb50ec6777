"""Figures of one checkout benchmark run → a Markdown section of BENCHMARKS.md."""

import re
from collections import Counter
from pathlib import Path

from bench._procs import WORKER_CONCURRENCY

MARK_START, MARK_END = "<!-- checkout:start -->", "<!-- checkout:end -->"
CPU_GROUPS = (
    ("gunicorn", "gunicorn (master + 2 workers)"),
    ("worker", "Celery worker (main + pool)"),
    ("beat", "Celery beat"),
    ("pg_bench", "PostgreSQL backends of the bench DBs"),
    ("pg_all", "PostgreSQL server, all processes ¹"),
    ("redis", "Redis server ¹"),
    ("loadgen", "load generator (bench process)"),
    ("machine", "whole machine, all processes ¹"),
)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms_triplet(values: list[float]) -> str:
    if not values:
        return "n/a"
    return " / ".join(f"{percentile(values, q) * 1000:,.0f}" for q in (0.5, 0.95, 0.99)) + " ms"


def _errors(statuses: Counter) -> str:
    bad = {status: n for status, n in statuses.items() if status != "201"}
    return ", ".join(f"{status}: {n}" for status, n in sorted(bad.items())) or "none"


def phase_rows(phases: list[dict]) -> list[str]:
    def row(label: str, values) -> str:
        return f"| {label} | " + " | ".join(values) + " |"

    rows = [
        "| | " + " | ".join(f"{p['name']} load" for p in phases) + " |",
        "|---|" + "---|" * len(phases),
        row("Offered rate (open loop)", [f"{p['rate']:g} POST/s for {p['duration']:g} s" for p in phases]),
        row("POSTs answered 201 / scheduled", [f"{p['created']} / {p['scheduled']}" for p in phases]),
        row("Achieved POSTs/s (201)", [f"{p['post_rate']:.2f}" for p in phases]),
        row("**Orders CONFIRMED per second**", [f"**{p['confirmed_rate']:.2f}**" for p in phases]),
        row(
            "Orders CONFIRMED (by end of window / after settle)",
            [f"{p['confirmed_in_window']} / {p['confirmed']}" for p in phases],
        ),
        row("Other outcomes", [p["other_outcomes"] or "none" for p in phases]),
        row("Settled (every saga ended) after the window", [p["settle_note"] for p in phases]),
        row("**POST latency p50 / p95 / p99** ²", [f"**{_ms_triplet(p['post_latency'])}**" for p in phases]),
        row("POST service time p50 / p95 / p99 ³", [_ms_triplet(p["post_service"]) for p in phases]),
        row("**POST → CONFIRMED p50 / p95 / p99**", [f"**{_ms_triplet(p['to_confirmed'])}**" for p in phases]),
        row("Errors by status", [_errors(p["statuses"]) for p in phases]),
        row("Measured window (load + settle)", [f"{p['cpu']['wall']:.1f} s" for p in phases]),
        row("Celery tasks finished (per confirmed order)", [f"{p['tasks']} ({_ratio(p['tasks'], p)})" for p in phases]),
        row(
            "Mean task wall time (worker CPU per task)",
            [f"{_mean_ms(p['task_seconds'], p['tasks'])} ({_mean_ms(p['cpu']['worker'], p['tasks'])})" for p in phases],
        ),
        row(
            f"Worker pool busy (task time ÷ {WORKER_CONCURRENCY} processes × window)",
            [f"{pool_busy(p):.0%}" for p in phases],
        ),
    ]
    for key, label in CPU_GROUPS:
        rows.append(
            row(
                f"CPU s: {label}",
                [f"{p['cpu'][key]:.1f} s ({_per_order(p, key)})" for p in phases],
            )
        )
    return rows


def _ratio(value: float, phase: dict) -> str:
    return f"{value / phase['confirmed']:.1f}" if phase["confirmed"] else "n/a"


def _mean_ms(seconds: float, count: int) -> str:
    return f"{seconds / count * 1000:.0f} ms" if count else "n/a"


def pool_busy(phase: dict, processes: int = WORKER_CONCURRENCY) -> float:
    return phase["task_seconds"] / (processes * phase["cpu"]["wall"])


def _per_order(phase: dict, key: str) -> str:
    if not phase["confirmed"]:
        return "n/a"
    return f"{phase['cpu'][key] / phase['confirmed'] * 1000:.0f} ms/order"


def floor_rows(per_order: dict, floor: dict, ours: float) -> list[str]:
    return [
        "| Per confirmed order (high load) | commits | rows inserted | rows updated | rows deleted |",
        "|---|---|---|---|---|",
        f"| pg_stat_database deltas ÷ confirmed orders | {per_order['xact_commit']:.1f} | "
        f"{per_order['tup_inserted']:.1f} | {per_order['tup_updated']:.1f} | {per_order['tup_deleted']:.1f} |",
        "",
        "| Floor: plain psycopg, same writes and commits per order | |",
        "|---|---|",
        f"| Threads × duration | {floor['threads']} × {floor['seconds']:.0f} s |",
        f"| Floor orders/s | **{floor['orders_per_s']:.1f}** ({floor['commits_per_s']:,.0f} commits/s) |",
        f"| Our confirmed orders/s at high load | {ours:.2f} |",
        f"| **Our throughput as a fraction of the floor** | **{ours / floor['orders_per_s']:.1%}** |",
    ]


def write_section(path: Path, section: str, start: str = MARK_START, end: str = MARK_END) -> None:
    """Replace only what is between ``start`` and ``end`` (other sections belong to others)."""
    text = (
        path.read_text()
        if path.exists()
        else "# Benchmarks\n\nFigures measured on the machine named in each section.\n"
    )
    block = f"{start}\n{section.strip()}\n{end}"
    if start in text and end in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def _p50_ms(values: list[float]) -> str:
    return f"{percentile(values, 0.5) * 1000:,.0f} ms" if values else "n/a"


def interpretation(phases: list[dict], per_order: dict, floor: dict, cpus: int) -> list[str]:
    """Sentences computed from this run's figures (so they stay true when the figures change)."""
    low, high = phases[0], phases[-1]
    ours = sum(high["cpu"][k] for k in ("gunicorn", "worker", "beat", "pg_bench", "loadgen"))
    capacity = cpus * high["cpu"]["wall"]
    busy = pool_busy(high)
    fraction = high["confirmed_rate"] / floor["orders_per_s"]
    task_cpu = high["cpu"]["worker"] / high["tasks"] * 1000 if high["tasks"] else 0
    task_wall = high["task_seconds"] / high["tasks"] * 1000 if high["tasks"] else 0
    saturated = high["confirmed_rate"] < 0.9 * high["rate"] or busy >= 0.8
    ours_per_order = ours / high["confirmed"] if high["confirmed"] else 0
    pool_per_order = high["task_seconds"] / high["confirmed"] * 1000 if high["confirmed"] else 0
    cpu_per_order = high["cpu"]["worker"] / high["confirmed"] * 1000 if high["confirmed"] else 0
    commit_ms = floor["commit_latency"] * 1000
    commit_wait = per_order["xact_commit"] * commit_ms
    tasks_per_order = _ratio(high["tasks"], high)
    lines = [
        f"- **Throughput.** Offered {low['rate']:g} then {high['rate']:g} orders/s, the stack confirmed "
        f"{low['confirmed_rate']:.2f} and {high['confirmed_rate']:.2f} orders/s; POST→CONFIRMED p50 went from "
        f"{_p50_ms(low['to_confirmed'])} to {_p50_ms(high['to_confirmed'])}. "
        + (
            "At the high rate the saga work queued up behind the Celery pool: that rate is past what this "
            "machine sustained during the run, and the confirmed rate is its capacity."
            if saturated
            else "Both rates were served without a growing backlog."
        ),
        f"- **Where the time goes.** An order needs {tasks_per_order} Celery tasks (one per event delivery to "
        f"one subscriber: the saga's commands and replies, choreographed reactions; plus the periodic sweeps) and "
        f"{per_order['xact_commit']:.0f} PostgreSQL commits. A task takes {task_wall:.0f} ms of wall time on "
        f"average but only {task_cpu:.0f} ms of worker CPU. Per order the pool spent {pool_per_order:.0f} ms: "
        f"{cpu_per_order:.0f} ms CPU, roughly {commit_wait:.0f} ms waiting for commits ({commit_ms:.1f} ms each "
        f"on one connection, mostly the WAL fsync; not all of them are the worker's), the rest waiting for a CPU "
        f"on a busy machine, for Redis and for the network. The {WORKER_CONCURRENCY} pool processes were busy "
        f"{busy:.0%} of the high-load window"
        + (
            f": with concurrency {WORKER_CONCURRENCY} and tasks that mostly wait, the pool is what saturates first."
            if saturated
            else f"; with concurrency {WORKER_CONCURRENCY} and tasks that mostly wait, "
            "the pool is what saturates first as the rate grows."
        )
        + f" gunicorn answered POSTs in {_p50_ms(high['post_service'])} (p50) and was not the limit.",
        f"- **CPU per confirmed order** (high load): Celery worker {_ms_per(high, 'worker')}, gunicorn "
        f"{_ms_per(high, 'gunicorn')}, PostgreSQL backends {_ms_per(high, 'pg_bench')}, Redis ≤ "
        f"{_ms_per(high, 'redis')}: Python (ORM, Celery, JSON and schema checks of every event) costs far more "
        f"than the database does. With the {cpus} CPUs to ourselves, {ours_per_order * 1000:.0f} ms of CPU per "
        f"order would allow about {cpus / ours_per_order if ours_per_order else 0:.0f} orders/s, given enough "
        "worker concurrency to cover the waits.",
        f"- **The machine was shared.** All processes used {high['cpu']['machine']:.0f} CPU s of the "
        f"{capacity:.0f} available in the high-load window; ours (app, bench backends, load generator) "
        f"{ours:.0f} s. The rest were other sessions' test runs, so absolute figures here are lower and noisier "
        "than on an idle machine; the per-order costs are the comparable part.",
        f"- **Against the floor.** Plain psycopg doing the same {per_order['tup_inserted']:.0f} inserts, "
        f"{per_order['tup_updated']:.0f} updates and {per_order['xact_commit']:.0f} commits per order from "
        f"{floor['threads']} threads reaches {floor['orders_per_s']:.0f} orders/s; we reach {fraction:.1%} of it. "
        "The database is not what limits checkout: the cost is in the hops (outbox row → relay → Redis → task → "
        f"inbox row, {tasks_per_order} times per order, each in its own transactions) and in Python around them. "
        "The floor spreads every write over all the commits, while some of ours are read-only autocommit "
        "SELECTs (no fsync), so it is, if anything, a pessimistic floor."
        + (
            ""
            if saturated
            else " The high load did not saturate the stack, so this fraction is a lower bound: the CPU-bound "
            f"estimate above ({cpus / ours_per_order if ours_per_order else 0:.0f} orders/s) would be "
            f"{(cpus / ours_per_order if ours_per_order else 0) / floor['orders_per_s']:.0%} of the floor."
        ),
    ]
    return lines


def _ms_per(phase: dict, key: str) -> str:
    return f"{phase['cpu'][key] / phase['confirmed'] * 1000:.0f} ms" if phase["confirmed"] else "n/a"


def section(*, args, host: dict, load: str, when: str, stock: int, phases, per_order, floor) -> str:
    high = phases[-1]
    high_rate_note = (
        f"given: `--high {args.high:g}`"
        if args.high
        else f"chosen by the run (80 % of the pool capacity the low run implies): {high['rate']:g} POST/s"
    )
    table = "\n".join(phase_rows(phases))
    floor_table = "\n".join(floor_rows(per_order, floor, high["confirmed_rate"]))
    notes = "\n".join(interpretation(phases, per_order, floor, host["cpus"]))
    return f"""## Checkout: `POST /api/v1/orders` → CONFIRMED

Command: `make bench` (runs `.venv/bin/python bench/checkout.py`; low rate {args.low:g} POST/s, {args.duration:g} s per
load, {args.threads} client threads; high rate {high_rate_note}); run {when}.
Machine: {host["cpus"]} × {host["model"]}, {host["mem"]} RAM; PostgreSQL {host["pg"]}; Redis {host["redis"]};
Python {host["python"]}. Load average {load} (the machine is shared with other sessions).

Setup: gunicorn 2 sync workers; one Celery worker on every queue, concurrency {WORKER_CONCURRENCY} (prefork), plus beat;
`DB_POOL=true`, `DEBUG=false`, `LOG_LEVEL=WARNING`, rate limits off; one PostgreSQL database per context.
{args.users} users (JWT minted in-process), {args.products} products with {stock:,} units each. Each order:
1–3 random products × 1–2 units, card token `tok_visa` (fake gateway, no added latency), an `Idempotency-Key`
header. {args.threads} client threads, open loop (requests are due at a fixed rate whatever the server does).

{table}

¹ Shared with the other sessions on this machine, so an upper bound for our share.
² From the moment the request was due (open loop), so waiting for a free client thread or gunicorn worker
counts. ³ From sending to the full answer. Per-order CPU = CPU seconds ÷ orders CONFIRMED in that window.

### Database floor (same run)

{floor_table}

### Reading it

{notes}
"""
