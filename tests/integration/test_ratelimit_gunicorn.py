"""One rate-limit budget shared by every web process: a real gunicorn with two workers.

If counters lived in process memory, each worker would grant the full budget. Workers are
also recycled every few requests (``--max-requests``), so the requests are necessarily served
by several processes, whatever the kernel's accept() distribution: exactly the budget still
passes, and even a third process (this test) finds it spent.
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests.conftest import CONTEXT_DBS
from tests.support.worker import ROOT, wait_until, worker_environment

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)

BUDGET = 6
REQUESTS = 20
MAX_REQUESTS = 10  # per worker process, then gunicorn replaces it with a fresh one
PATH = "/api/v1/auth/me"  # anonymous: 401 while within budget, then 429


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _up(port: int) -> bool:
    try:
        return _get(port, "/health/live") == 200
    except OSError:
        return False


def _pids(access_log: Path, path: str) -> set[str]:
    return {line.split()[0] for line in access_log.read_text().splitlines() if line.endswith(path)}


def _both_workers_serving(port: int, access_log: Path) -> bool:
    """Concurrent health probes (never rate limited) until two worker pids have answered."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: _up(port), range(4)))
    return len(_pids(access_log, "/health/live")) >= 2


@pytest.fixture
def gunicorn():
    port = _free_port()
    access_log = Path(tempfile.mkstemp(prefix="gunicorn-access-", suffix=".log")[1])
    error_log = access_log.with_suffix(".err")
    env = worker_environment(RATELIMIT_ENABLED="true", RATELIMIT_ANON=f"{BUDGET}/d")
    cmd = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", "2", "--timeout", "30",
        "--max-requests", str(MAX_REQUESTS),
        "--access-logfile", str(access_log), "--access-logformat", "%(p)s %(s)s %(U)s",
        "--error-logfile", str(error_log),
        "--no-control-socket",  # gunicorn 27's default socket path is per host: parallel runs collide
    ]  # fmt: skip
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    try:
        wait_until(lambda: _up(port) or process.poll() is not None, timeout=30, message="gunicorn up")
        assert process.poll() is None, error_log.read_text(errors="replace")
        wait_until(lambda: _both_workers_serving(port, access_log), timeout=30, message="both workers up")
        yield port, access_log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        access_log.unlink(missing_ok=True)
        error_log.unlink(missing_ok=True)


def test_two_gunicorn_workers_share_one_budget_in_redis(gunicorn, settings):
    port, access_log = gunicorn
    settings.RATELIMIT_ANON = f"{BUDGET}/d"  # the same policy as the workers (the rate is part of the key)
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda _: _get(port, PATH), range(REQUESTS)))

    assert statuses.count(401) == BUDGET, statuses
    assert statuses.count(429) == REQUESTS - BUDGET, statuses

    served_by = _pids(access_log, PATH)
    assert len(served_by) >= REQUESTS // MAX_REQUESTS, f"expected several worker processes, saw {served_by}"

    # A third process, sharing nothing with gunicorn but Redis, finds the budget spent.
    assert APIClient().get(PATH, REMOTE_ADDR="127.0.0.1").status_code == 429
