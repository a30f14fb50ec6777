"""The fault campaign, short: ``bench/chaos.py`` with 300 orders and one fault of each kind.

It runs the production processes (gunicorn, two Celery workers, beat) against databases and two
redis-servers of its own (``shop_chaos_test<TEST_DB_SUFFIX>_<context>``, free ports), SIGKILLs a
worker and beat, restarts its Redis empty (cache and broker), terminates one context database's
backends, refuses connections to another for 15 s, re-sends delivered events, with the fake
provider failing 30 % of calls and hanging 5 %, and an outage of the provider that opens the
payment circuit breaker. The invariants are read from the databases by the command itself
(among them: no saga past its deadline by more than one sweep, the breaker opened during the
outage); this test fails when any of them broke (or the run did not settle within its bound).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_300_orders_through_one_fault_of_each_kind_lose_oversell_and_double_charge_nothing(tmp_path):
    summary_path = tmp_path / "chaos.json"
    prefix = "shop_chaos_test" + os.environ.get("TEST_DB_SUFFIX", "")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_TEST_")}
    done = subprocess.run(
        [sys.executable, "bench/chaos.py", "--orders", "300", "--rate", "5", "--fast-timers",
         "--worker-kill-every", "60", "--pg-kill-every", "60", "--burst-seconds", "12", "--prefix", prefix,
         "--no-write",
         "--json", str(summary_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert summary_path.exists(), done.stdout[-4000:] + done.stderr[-4000:]
    summary = json.loads(summary_path.read_text())
    broken = [f"{name}: {detail}" for name, ok, detail in summary["checks"] if not ok]
    assert summary["settled"], done.stdout[-4000:]
    assert not broken, "\n".join(broken) + "\n" + done.stdout[-3000:]
    kinds = " ".join(message for _, _, message in summary["faults"])
    faults = ("SIGKILL worker", "SIGKILL beat", "SHUTDOWN NOSAVE", "pg_terminate_backend", "ALLOW_CONNECTIONS false")
    for fault in (*faults, "re-sent", "payment provider outage"):
        assert fault in kinds, f"the run never applied {fault!r}: {kinds}"
    restart = next(message for _, _, message in summary["faults"] if "SHUTDOWN NOSAVE" in message)
    assert "cache and broker DBs empty" in restart, restart
    assert any(name == "provider outage opened the payment circuit breaker" for name, _, _ in summary["checks"])
    assert done.returncode == 0, done.stdout[-4000:]
