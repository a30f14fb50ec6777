"""Celery task counts and wall times from the worker's log (``--loglevel INFO``, JSON lines).

Celery logs ``Task <name>[<id>] succeeded in <seconds>s`` for every task; summed over a
window, that says how many tasks an order needs and how busy the pool processes were,
which the CPU figures alone cannot (a task waiting on a commit uses no CPU).
"""

import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

_DONE = re.compile(r"^Task (?P<name>\S+)\[[^\]]+\] succeeded in (?P<seconds>[0-9.e-]+)s")


def task_stats(log_path: Path, since: float, until: float) -> dict:
    """Tasks finished between two ``time.time()`` moments: count and seconds, per task name."""
    count: Counter = Counter()
    seconds: dict[str, float] = defaultdict(float)
    with log_path.open(errors="replace") as log:
        for line in log:
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
                done = _DONE.match(entry.get("event", ""))
                at = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).astimezone(UTC).timestamp()
            except (ValueError, KeyError, TypeError):
                continue
            if done and since <= at <= until:
                count[done["name"]] += 1
                seconds[done["name"]] += float(done["seconds"])
    return {"count": count, "seconds": dict(seconds)}
