"""Figures of one checkout benchmark run → Markdown sections of BENCHMARKS.md.

Everything in the checkout section is computed from the run; the "what each step bought" table
keeps one row per ``--label``led run (rows of earlier runs stay, each with its date and load).
"""

import re
from collections import Counter
from pathlib import Path

from bench._procs import WORKER_CONCURRENCY

MARK_START, MARK_END = "<!-- checkout:start -->", "<!-- checkout:end -->"
STEPS_START, STEPS_END = "<!-- checkout-steps:start -->", "<!-- checkout-steps:end -->"
STEPS_HEADER = (
    "| Step (label) | run | confirmed/s at saturation | commits / order | Celery tasks / order | new PG sessions / "
    "order | CPU ms / order (machine) | POST→COMPLETED p99 at half rate | slow provider ÷ fast | load average |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)
CPU_GROUPS = (
    ("gunicorn", "gunicorn (master + 2 workers)"),
    ("worker", "Celery worker (main + pool)"),
    ("beat", "Celery beat"),
    ("pg_bench", "PostgreSQL backends of the bench DBs (sampled, short-lived included)"),
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


def _ms(values: list[float], qs=(0.5, 0.95, 0.99)) -> str:
    if not values:
        return "n/a"
    return " / ".join(f"{percentile(values, q) * 1000:,.0f}" for q in qs) + " ms"


def _errors(statuses: Counter) -> str:
    bad = {status: n for status, n in statuses.items() if status != "201"}
    return ", ".join(f"{status}: {n}" for status, n in sorted(bad.items())) or "none"


def _per(value: float, phase: dict, scale: float = 1.0, digits: int = 1) -> str:
    return f"{value / phase['confirmed'] * scale:.{digits}f}" if phase["confirmed"] else "n/a"


def phase_rows(phases: list[dict]) -> list[str]:
    def row(label: str, values) -> str:
        return f"| {label} | " + " | ".join(values) + " |"

    rows = [
        "| | " + " | ".join(p["name"] for p in phases) + " |",
        "|---|" + "---|" * len(phases),
        row("Offered rate (open loop)", [f"{p['rate']:g} POST/s for {p['duration']:g} s" for p in phases]),
        row("POSTs answered 201 / scheduled", [f"{p['created']} / {p['scheduled']}" for p in phases]),
        row(
            "**Orders CONFIRMED per second** (first POST → last confirmation)",
            [f"**{p['confirmed_rate']:.1f}**" for p in phases],
        ),
        row("Orders CONFIRMED per second while the load ran", [f"{p['confirmed_while_loaded']:.1f}" for p in phases]),
        row(
            "Orders CONFIRMED / saga COMPLETED (after settle)", [f"{p['confirmed']} / {p['completed']}" for p in phases]
        ),
        row("Other outcomes", [p["other_outcomes"] or "none" for p in phases]),
        row("Settled (every saga ended) after the load", [p["settle_note"] for p in phases]),
        row("**POST latency p50 / p95 / p99** ²", [f"**{_ms(p['post_latency'])}**" for p in phases]),
        row("POST → CONFIRMED p50 / p95 / p99", [_ms(p["to_confirmed"]) for p in phases]),
        row("**POST → saga COMPLETED p50 / p95 / p99**", [f"**{_ms(p['to_completed'])}**" for p in phases]),
        row("Errors by status", [_errors(p["statuses"]) for p in phases]),
        row("Measured window (load + settle)", [f"{p['cpu']['wall']:.1f} s" for p in phases]),
        row("Celery tasks (per confirmed order)", [f"{p['tasks']} ({_per(p['tasks'], p, digits=2)})" for p in phases]),
        row(
            "Mean task wall time",
            [f"{p['task_seconds'] / p['tasks'] * 1000:.1f} ms" if p["tasks"] else "n/a" for p in phases],
        ),
    ]
    for key, label in CPU_GROUPS:
        rows.append(
            row(
                f"CPU s: {label}",
                [f"{p['cpu'][key]:.1f} s ({_per(p['cpu'][key], p, 1000, 1)} ms/order)" for p in phases],
            )
        )
    return rows


def per_order_rows(per_order: dict, saturation: dict) -> list[str]:
    ours = sum(saturation["cpu"][k] for k in ("gunicorn", "worker", "beat", "pg_bench", "redis"))
    return [
        "| Per confirmed order, saturation phase | value | target |",
        "|---|---|---|",
        f"| PostgreSQL commits (`xact_commit`, read-only autocommit statements included) | "
        f"{per_order['xact_commit']:.1f} | ≤ 12 |",
        f"| Rows inserted / updated / deleted | {per_order['tup_inserted']:.1f} / {per_order['tup_updated']:.1f} / "
        f"{per_order['tup_deleted']:.1f} | |",
        f"| New PostgreSQL sessions (`pg_stat_database.sessions`) | {per_order['sessions']:.3f} | 0 in steady state |",
        f"| Celery tasks (a delivery batch counts once) | {_per(saturation['tasks'], saturation, digits=2)} | ≤ 3 |",
        f"| CPU, whole machine (all processes, other sessions' included) | "
        f"{_per(saturation['cpu']['machine'], saturation, 1000)} ms | ≤ 20 ms |",
        f"| CPU, our processes (gunicorn, worker, beat, bench DB backends, Redis) | {_per(ours, saturation, 1000)} ms"
        " | |",
    ]


def _floor_cells(floor: dict, ours: float) -> str:
    if floor["orders_per_s"] is None:
        return f"not measured ({floor['error']}) | n/a"
    return f"{floor['orders_per_s']:.1f} | **{ours / floor['orders_per_s']:.0%}**"


def floor_rows(per_order: dict, floor: dict, essential: dict, ours: float) -> list[str]:
    return [
        "| Floor (plain psycopg, 16 threads, same run) | orders/s | ours ÷ floor |",
        "|---|---|---|",
        f"| Replay of our own writes: {per_order['tup_inserted']:.0f} inserts, {per_order['tup_updated']:.0f} "
        f"updates, {per_order['xact_commit']:.0f} commits per order | {_floor_cells(floor, ours)} |",
        "| Essential work: 7 transactions over the orders, inventory and payments databases per order | "
        f"{_floor_cells(essential, ours)} |",
    ]


def section(*, command, args, host, load, when, stock, phases, per_order, floor, essential) -> str:
    order = [phases[k] for k in ("low", "saturation", "half", "slow") if k in phases]
    saturation, half, slow = phases["saturation"], phases["half"], phases["slow"]
    ratio = slow["confirmed_rate"] / saturation["confirmed_rate"] if saturation["confirmed_rate"] else 0
    return f"""## Checkout: `POST /api/v1/orders` → CONFIRMED → saga COMPLETED

Command: `{command}` (`bench/checkout.py`); run {when}.
Machine: {host["cpus"]} × {host["model"]}, {host["mem"]} RAM; PostgreSQL {host["pg"]}; Redis {host["redis"]};
Python {host["python"]}. Load average {load}.

Setup: everything on this machine: gunicorn 2 sync workers; one Celery worker on every queue, concurrency
{WORKER_CONCURRENCY} (prefork, deliveries batched), plus beat; `DB_POOL=true`, `DEBUG=false`, `LOG_LEVEL=WARNING`,
rate limits off; one PostgreSQL database per context; the load generator ({args.threads} client threads, open loop:
requests are due at a fixed rate whatever the server does). {args.users} users (JWT minted in-process),
{args.products} products with {stock:,} units each. Each order: 1–3 random products × 1–2 units, card token
`tok_visa` (fake gateway), an `Idempotency-Key` header. Phases: an idle shop, saturation (offered more than the
stack takes: every order still ends, so orders ÷ time from the first POST to the last confirmation
is the capacity; it follows {args.warm_up:g} s at its rate, uncounted, in which the connection pools grow
to what the load needs), half the saturated rate (latencies), and the
saturation load again with the fake provider answering after {args.provider_latency} ms.

{chr(10).join(phase_rows(order))}

¹ Shared with whatever else runs on this machine. ² From the moment the request was due (open loop).

{chr(10).join(per_order_rows(per_order, saturation))}

{chr(10).join(floor_rows(per_order, floor, essential, saturation["confirmed_rate"]))}

- At half the saturated rate: POST p99 {_ms(half["post_latency"], (0.99,))} (target ≤ 50 ms), POST → saga COMPLETED p99
  {_ms(half["to_completed"], (0.99,))} (target ≤ 1 s).
- With a {args.provider_latency} ms provider the stack confirmed {slow["confirmed_rate"]:.1f} orders/s,
  {ratio:.0%} of the zero-latency rate (target ≥ 80 %).
"""


def quick_summary(saturation: dict, per_order: dict, host: dict, load: str) -> str:
    return "\n".join(
        ["", f"Quick run on {host['cpus']} × {host['model']}; load average {load}", ""]
        + phase_rows([saturation])
        + [""]
        + per_order_rows(per_order, saturation)
    )


def _replace(text: str, start: str, end: str, body: str) -> str:
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        return re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    return text.rstrip() + "\n\n" + block + "\n"


def write_section(path: Path, section: str, start: str = MARK_START, end: str = MARK_END) -> None:
    """Replace only what is between ``start`` and ``end`` (other sections belong to others)."""
    text = (
        path.read_text()
        if path.exists()
        else "# Benchmarks\n\nFigures measured on the machine named in each section.\n"
    )
    path.write_text(_replace(text, start, end, section))


def add_step(path: Path, *, label: str, when: str, phases: dict, per_order: dict, load: str, essential: dict) -> None:
    """One row of the "what each step bought" table, written by a run of the bench on that step's code."""
    saturation, half, slow = phases["saturation"], phases["half"], phases["slow"]
    ratio = slow["confirmed_rate"] / saturation["confirmed_rate"] if saturation["confirmed_rate"] else 0
    share = (
        f"{saturation['confirmed_rate'] / essential['orders_per_s']:.0%} of essential floor"
        if essential["orders_per_s"]
        else "essential floor not measured"
    )
    row = (
        f"| {label} | {when} | {saturation['confirmed_rate']:.1f} ({share}) | "
        f"{per_order['xact_commit']:.1f} | {_per(saturation['tasks'], saturation, digits=2)} | "
        f"{per_order['sessions']:.2f} | {_per(saturation['cpu']['machine'], saturation, 1000)} | "
        f"{_ms(half['to_completed'], (0.99,))} | {ratio:.0%} | {load} |"
    )
    text = path.read_text()
    rows: list[str] = []
    if STEPS_START in text:
        body = text.split(STEPS_START, 1)[1].split(STEPS_END, 1)[0]
        rows = [line for line in body.strip().splitlines() if line.startswith("| ") and not line.startswith("| Step")]
    rows = [r for r in rows if not r.startswith(f"| {label} |")] + [row]
    body = (
        "## Checkout: what each step bought\n\n"
        'One row per `make bench BENCH_ARGS="--label ..."` run, on the code of that step (written by the bench).\n\n'
        + STEPS_HEADER
        + "\n"
        + "\n".join(rows)
    )
    path.write_text(_replace(text, STEPS_START, STEPS_END, body))
