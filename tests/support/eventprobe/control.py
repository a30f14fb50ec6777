"""How tests steer and observe the probe subscribers: through Redis, shared with the worker process.

A consumer's *mode* decides what its handler does on each attempt:
``ok`` (default), ``fail:N`` (raise on the first N attempts of each event), ``always`` (always raise),
``sleep:S`` (take S seconds, then succeed: an in-flight delivery for shutdown tests).
"""

import json

import redis
from django.conf import settings

PREFIX = "eventprobe"


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def set_mode(consumer: str, mode: str) -> None:
    _redis().set(f"{PREFIX}:mode:{consumer}", mode)


def mode(consumer: str) -> str:
    value = _redis().get(f"{PREFIX}:mode:{consumer}")
    return value.decode() if value else "ok"


def count_attempt(consumer: str, event_id: str) -> int:
    return int(_redis().incr(f"{PREFIX}:attempts:{consumer}:{event_id}"))


def attempts(consumer: str, event_id: str) -> int:
    return int(_redis().get(f"{PREFIX}:attempts:{consumer}:{event_id}") or 0)


def record_seen(consumer: str, event_id: str, seen: dict) -> None:
    _redis().set(f"{PREFIX}:seen:{consumer}:{event_id}", json.dumps(seen))


def seen(consumer: str, event_id: str) -> dict | None:
    value = _redis().get(f"{PREFIX}:seen:{consumer}:{event_id}")
    return json.loads(value) if value else None


def should_fail(consumer: str, attempt: int) -> bool:
    current = mode(consumer)
    if current == "always":
        return True
    if current.startswith("fail:"):
        return attempt <= int(current.split(":", 1)[1])
    return False


def sleep_seconds(consumer: str) -> float:
    current = mode(consumer)
    return float(current.split(":", 1)[1]) if current.startswith("sleep:") else 0.0


def reset() -> None:
    client = _redis()
    keys = list(client.scan_iter(f"{PREFIX}:*"))
    if keys:
        client.delete(*keys)
