"""A real Celery worker in a subprocess, pointed at the test databases.

Integration and end-to-end tests use it instead of eager mode or mocks, so delivery,
acknowledgement, retries and crashes behave as in production.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from django.conf import settings
from django.db import connections

from shop.contexts import WORKER_QUEUES, database_url_variable

ROOT = Path(__file__).resolve().parents[2]
QUEUES = ",".join(WORKER_QUEUES)


def worker_environment(**overrides) -> dict:
    env = os.environ.copy()
    for alias in settings.CONTEXTS:
        conf = connections[alias].settings_dict
        env[database_url_variable(alias)] = (
            f"postgres://{conf['USER']}@{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 5432}/{conf['NAME']}"
        )
    env["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
    env["PYTHONUNBUFFERED"] = "1"
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def purge_broker() -> None:
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


class WorkerProcess:
    def __init__(self, *, beat: bool = False, concurrency: int = 2, env: dict | None = None):
        self.beat = beat
        self.concurrency = concurrency
        self.env = env or {}
        self.log_path = Path(tempfile.mkstemp(prefix="celery-worker-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "WorkerProcess":
        cmd = [
            sys.executable, "-m", "celery", "-A", "config", "worker",
            "-Q", QUEUES, "--concurrency", str(self.concurrency), "--pool", "prefork",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel", "INFO", "--hostname", f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
        ]  # fmt: skip
        if self.beat:
            cmd += ["--beat", "--schedule", str(self.log_path.with_suffix(".beat"))]
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            cmd, cwd=ROOT, env=worker_environment(**self.env), stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()}")
            if "ready." in self.log():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole process group: no graceful shutdown, unacked messages stay unacked."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "_log", None):
            self._log.close()


def wait_until(predicate, *, timeout: float = 30, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
