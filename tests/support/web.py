"""A real gunicorn (config/gunicorn.py hooks) serving the test databases, for stack-level tests."""

import http.client
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.ports import free_port
from tests.support.worker import ROOT, wait_until, worker_environment


class GunicornProcess:
    def __init__(self, *, workers: int = 2, env: dict | None = None):
        self.port = free_port()
        self.workers = workers
        self.env = env or {}
        self.log_path = Path(tempfile.mkstemp(prefix="gunicorn-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def start(self) -> "GunicornProcess":
        cmd = [
            sys.executable, "-m", "gunicorn", "config.wsgi:application", "-c", "config/gunicorn.py",
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers), "--timeout", "30",
            "--graceful-timeout", "20", "--no-control-socket", "--error-logfile", "-",
        ]  # fmt: skip
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            cmd, cwd=ROOT, env=worker_environment(**self.env), stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_until(self._up, timeout=30, interval=0.2, message=f"gunicorn on {self.port}:\n{self.log_path}")
        return self

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{self.log_path.read_text()}")
        try:
            return self.get("/health/live")[0] == 200
        except OSError:
            return False

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        import os
        import signal

        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()
