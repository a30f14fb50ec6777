"""The Celery app as production runs it, plus task counters for the benchmark (``-A bench._counting``).

Every finished task (a delivery batch counts once, however many deliveries it carried) adds
one to a Redis hash in the bench's own cache DB, with its wall time: the bench reads tasks
per order from signals, not from log lines, so the worker can log at WARNING as in production.
"""

import os
import time

import redis
from celery import signals

from config.celery import app  # noqa: F401 - the app this module serves

_redis = redis.Redis.from_url(os.environ["BENCH_COUNTER_URL"])
_started: dict[str, float] = {}
KEY = "bench:tasks"


@signals.task_prerun.connect(weak=False)
def _prerun(task_id=None, **kwargs):
    _started[task_id] = time.perf_counter()


@signals.task_postrun.connect(weak=False)
def _postrun(task_id=None, task=None, **kwargs):
    took = time.perf_counter() - _started.pop(task_id, time.perf_counter())
    pipe = _redis.pipeline(transaction=False)
    pipe.hincrby(KEY, f"{task.name}:count", 1)
    pipe.hincrbyfloat(KEY, f"{task.name}:seconds", took)
    pipe.execute()
