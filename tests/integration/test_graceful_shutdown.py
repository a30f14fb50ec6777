"""SIGTERM (what `docker stop` and Kubernetes send) loses no in-flight delivery or request.

The worker's main process gets SIGTERM while a delivery is inside its handler: Celery's warm
shutdown lets it finish, commit its inbox row and acknowledge the message before exiting.
Nothing is left in the broker, so nothing is redelivered and the handler ran once.
"""

import json
import os
import signal
import socket
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import transaction

from apps.orders.models import InboxMessage
from shop.events import publish
from tests.conftest import CONTEXT_DBS
from tests.support.eventprobe import control
from tests.support.eventprobe.events import PONGED
from tests.support.eventprobe.handlers import PONGED_CONSUMER
from tests.support.web import GunicornProcess
from tests.support.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)]


def test_sigterm_during_a_delivery_finishes_and_acknowledges_it_before_the_worker_exits(worker_factory):
    control.reset()
    control.set_mode(PONGED_CONSUMER, "sleep:3")
    worker = worker_factory(concurrency=1)
    with transaction.atomic(using="orders"):
        event_id = publish(PONGED, {"pingId": str(uuid.uuid4())}, aggregate_id="agg", using="orders").id
    wait_until(lambda: control.attempts(PONGED_CONSUMER, event_id) == 1, message="the handler to start")

    os.kill(worker.process.pid, signal.SIGTERM)  # the main process only, as docker stop does
    assert worker.process.wait(timeout=30) == 0

    assert InboxMessage.objects.filter(consumer=PONGED_CONSUMER, event_id=event_id).count() == 1
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    assert broker.hlen("unacked") == 0, "the in-flight message was not acknowledged"
    assert broker.llen("orders") == 0, "the in-flight message went back to the queue"
    assert control.attempts(PONGED_CONSUMER, event_id) == 1
    control.reset()


def accepted_by_a_worker(master_pid: int, client_port: int) -> bool:
    """True once a gunicorn worker process owns the server side of our connection (accept() done)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == client_port:  # remote end is our client
                inodes.add(fields[9])
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    for pid in children:
        try:
            links = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            return True
    return False


def test_sigterm_to_gunicorn_lets_a_request_in_progress_finish_before_exiting():
    web = GunicornProcess(workers=1).start()
    body = json.dumps({"email": "nobody@example.com", "password": "wrong-password-123"}).encode()
    conn = socket.create_connection(("127.0.0.1", web.port), timeout=20)
    try:
        head = (
            f"POST /api/v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        conn.sendall(head + body[:10])
        client_port = conn.getsockname()[1]
        wait_until(lambda: accepted_by_a_worker(web.process.pid, client_port), message="a worker holding the request")
        os.kill(web.process.pid, signal.SIGTERM)  # the master only, as docker stop does
        conn.sendall(body[10:])
        response = b""
        while chunk := conn.recv(65536):
            response += chunk
    finally:
        conn.close()
    assert response.startswith(b"HTTP/1.1 401"), response[:200]
    assert web.process.wait(timeout=30) == 0
    web.stop()
