"""The multiprocess folder of a process group, without importing any metric definition.

Importing ``shop.observability.metrics`` already writes files into the folder, so the
gunicorn master empties it from here, before anything is measured.
"""

import os


def prepare() -> None:
    """Create and empty this group's folder at start: files of a previous run would count again."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))


def mark_process_dead(pid: int) -> None:
    """Drop a dead process's live gauges (counters and histograms keep counting its samples)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
