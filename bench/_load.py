"""Open-loop HTTP load: requests arrive at a fixed rate whatever the server's speed.

A closed loop (each client waits for its answer before sending the next) slows down with
the server and hides queueing ("coordinated omission"). Here a scheduler releases request
``i`` at ``start + i / rate`` into a queue that client threads serve; latency is counted from
that scheduled moment, so time spent waiting for a free client or a free server worker is
part of it. ``service`` latency (send → answer) is kept too.
"""

import http.client
import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    index: int
    scheduled: float  # time.monotonic() at which the request was due
    sent: float | None
    done: float | None
    status: str  # HTTP status, or "timeout"/"connection"/"not sent"
    order_id: str | None = None
    error_body: str | None = None  # the start of a 5xx answer (is it the error envelope?)

    @property
    def latency(self) -> float | None:
        return None if self.done is None else self.done - self.scheduled

    @property
    def service(self) -> float | None:
        return None if self.done is None else self.done - self.sent


def _send(conn: http.client.HTTPConnection, method: str, path: str, body: dict, headers: dict):
    """One request; a closed or broken connection is reopened once (gunicorn's sync
    workers close the connection after every response)."""
    payload = json.dumps(body).encode()
    for attempt in (1, 2):
        try:
            conn.request(method, path, body=payload, headers={"Content-Type": "application/json", **headers})
            response = conn.getresponse()
            return response.status, response.read()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            conn.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def run_open_loop(
    *,
    host: str,
    port: int,
    rate: float,
    duration: float,
    threads: int,
    request: Callable[[int], tuple[str, dict, dict]],
    drain_seconds: float = 30.0,
    timeout: float = 30.0,
) -> tuple[list[Result], float, float]:
    """Send ``rate × duration`` requests; returns (results, start, end of scheduling).

    ``request(i)`` gives (path, json body, headers) of POST number ``i``. Requests still queued
    ``drain_seconds`` after the last was due are not sent (counted as "not sent").
    """
    jobs: queue.Queue = queue.Queue()
    results: list[Result] = []
    lock = threading.Lock()
    total = int(rate * duration)
    start = time.monotonic() + 0.2
    give_up = start + duration + drain_seconds

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        mine = []
        try:
            while (job := jobs.get()) is not None:
                index, due = job
                if time.monotonic() > give_up:
                    mine.append(Result(index, due, None, None, "not sent"))
                    continue
                path, body, headers = request(index)
                sent = time.monotonic()
                try:
                    status, raw = _send(conn, "POST", path, body, headers)
                except TimeoutError:
                    conn.close()
                    mine.append(Result(index, due, sent, None, "timeout"))
                    continue
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    mine.append(Result(index, due, sent, None, f"connection ({type(exc).__name__})"))
                    continue
                order_id = None
                if status == 201:
                    order_id = json.loads(raw)["data"]["id"]
                error_body = raw[:300].decode(errors="replace") if status >= 500 else None
                mine.append(Result(index, due, sent, time.monotonic(), str(status), order_id, error_body))
        finally:
            conn.close()
            with lock:
                results.extend(mine)

    workers = [threading.Thread(target=client, daemon=True, name=f"load-{n}") for n in range(threads)]
    for worker in workers:
        worker.start()
    for index in range(total):
        due = start + index / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        jobs.put((index, due))
    scheduled_end = time.monotonic()
    for _ in workers:
        jobs.put(None)
    for worker in workers:
        worker.join(timeout=max(0.0, give_up + timeout + 5 - time.monotonic()))
    with lock:
        return sorted(results, key=lambda r: r.index), start, scheduled_end
