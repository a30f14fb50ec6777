"""Processes the checkout benchmark starts, and CPU time read from /proc.

Every process runs in its own session (process group), so stopping it also stops its
children (gunicorn workers, Celery pool processes) and nothing outlives the benchmark.
CPU time comes from ``/proc/<pid>/stat`` (utime + stime, in clock ticks); a process group
also counts the time of children its root has already reaped (cutime + cstime).
"""

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
# Celery pool size, as `make worker` uses (WORKER_CONCURRENCY): tasks mostly wait on I/O.
WORKER_CONCURRENCY = int(os.environ.get("WORKER_CONCURRENCY", "4"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    """One long-running process (and its children) with its output in a log file."""

    name: str
    cmd: list[str]
    env: dict
    cwd: Path
    log_path: Path
    process: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)

    def start(self) -> "Service":
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            self.cmd, cwd=self.cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_for_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            if text in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: no {text!r} after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the whole group (a graceful shutdown), SIGKILL whatever is left after ``timeout``."""
        if self.process is not None:
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(timeout=wait)
                    _wait_group_gone(self.process.pid, wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._log is not None:
            self._log.close()
            self._log = None


def _wait_group_gone(pgid: int, timeout: float) -> None:
    """The root has exited; give its children (same group) the time to follow."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# --- CPU accounting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    start: int  # start time in ticks after boot: (pid, start) survives pid reuse
    own: int  # utime + stime
    reaped: int  # cutime + cstime


def _read_stat(pid: int) -> Proc | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return Proc(
        pid, int(fields[1]), int(fields[19]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])
    )


def processes() -> dict[int, Proc]:
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            proc = _read_stat(int(entry))
            if proc is not None:
                table[proc.pid] = proc
    return table


def tree(table: dict[int, Proc], root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            found.append(pid)
            todo += children.get(pid, [])
    return found


def pgrep(pattern: str) -> list[int]:
    done = subprocess.run(["pgrep", "-x", pattern], capture_output=True, text=True, check=False)
    return [int(pid) for pid in done.stdout.split()]


def root_of(name: str) -> int | None:
    """The parent of all processes called ``name`` (the postmaster of PostgreSQL's backends)."""
    table = processes()
    pids = {pid for pid in pgrep(name) if pid in table}
    return next((pid for pid in sorted(pids) if table[pid].ppid not in pids), None)


def machine_busy_ticks() -> int:
    """Busy time of all CPUs (everything but idle and iowait), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
    return user + nice + system + irq + softirq + steal


class CpuMeter:
    """CPU seconds per named group of processes between ``start()`` and ``stop()``.

    A group is a list of ``(pid, with_children)`` roots resolved at each snapshot; a process
    that appears during the window counts from zero, one that vanished counts up to its last
    sighting (a group root's reaped children are in its cutime/cstime).
    """

    def __init__(self, groups):
        self.groups = groups  # name -> callable returning [(pid, with_children)]

    def _snapshot(self) -> dict:
        table = processes()
        snap = {"machine": machine_busy_ticks()}
        for name, roots in self.groups.items():
            ticks = {}
            for root, with_children in roots():
                pids = tree(table, root) if with_children else [root] if root in table else []
                for pid in pids:
                    proc = table[pid]
                    ticks[(pid, proc.start)] = proc.own + (proc.reaped if pid == root else 0)
            snap[name] = ticks
        return snap

    def start(self) -> None:
        self._before = self._snapshot()
        self._started = time.monotonic()

    def stop(self) -> dict:
        after = self._snapshot()
        wall = time.monotonic() - self._started
        result = {"wall": wall, "machine": (after["machine"] - self._before["machine"]) / TICK}
        for name in self.groups:
            before, now = self._before[name], after[name]
            keys = set(before) | set(now)
            result[name] = sum(now.get(k, before.get(k, 0)) - before.get(k, 0) for k in keys) / TICK
        return result
