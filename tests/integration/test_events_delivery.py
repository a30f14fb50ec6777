"""Outbox → Celery → inbox with a real worker subprocess, real PostgreSQL and real Redis.

The probe subscribers (tests/support/eventprobe) write nothing but their inbox rows, so the
inbox counts effects; a Redis counter counts handler attempts, in whichever process ran them.
"""

import json
import subprocess
import sys
import threading

import pytest
import redis
from django.db import connections, transaction
from django.utils import timezone

from apps.catalog.models import InboxMessage as CatalogInbox
from apps.orders.models import DeadLetter, InboxMessage, OutboxMessage
from shop.events import bus, publish, relay
from shop.events.tasks import deliver
from tests.conftest import CONTEXT_DBS
from tests.support.eventprobe import control
from tests.support.eventprobe.events import PINGED, PONGED
from tests.support.eventprobe.handlers import AUDIT_CONSUMER, PINGED_CONSUMER, PONGED_CONSUMER
from tests.support.worker import ROOT, wait_until, worker_environment

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)]

FAST_RETRIES = {"EVENTS_MAX_ATTEMPTS": 3, "EVENTS_RETRY_BASE_SECONDS": 0.05}


def ping(note: str, *, version: int | None = None, **extra) -> str:
    data = {"note": note, **({} if version == 1 else {"tier": 2}), **extra}
    with transaction.atomic(using="orders"):
        return publish(PINGED, data, aggregate_id="agg", using="orders", version=version).id


def handled(consumer: str, event_id: str, *, alias: str = "orders") -> int:
    model = CatalogInbox if alias == "catalog" else InboxMessage
    return model.objects.using(alias).filter(consumer=consumer, event_id=event_id).count()


def wait_handled(event_id: str, consumer: str = PINGED_CONSUMER, *, alias: str = "orders", timeout: float = 30):
    wait_until(lambda: handled(consumer, event_id, alias=alias), timeout=timeout, message=f"{consumer} {event_id}")


def publish_from_another_process(*args: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tests.support.eventprobe.publisher", *args],
        cwd=ROOT, env=worker_environment(**env), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_rolled_back_publish_delivers_nothing(celery_worker):
    with pytest.raises(RuntimeError), transaction.atomic(using="orders"):
        doomed = publish(PINGED, {"note": "doomed", "tier": 1}, aggregate_id="agg", using="orders").id
        raise RuntimeError("the business write failed")
    sentinel = ping("sentinel, published after the rollback")

    wait_handled(sentinel)
    wait_handled(sentinel, AUDIT_CONSUMER, alias="catalog")

    assert not OutboxMessage.objects.filter(id=doomed).exists()
    assert control.attempts(PINGED_CONSUMER, doomed) == control.attempts(AUDIT_CONSUMER, doomed) == 0
    assert handled(PINGED_CONSUMER, doomed) == 0


def test_broker_unreachable_after_commit_is_delivered_by_the_sweeper(celery_worker):
    result = publish_from_another_process(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 0, result.stderr
    event_id = result.stdout.strip()

    row = OutboxMessage.objects.get(id=event_id)
    assert (row.sent_at, row.delivered_at, row.attempts) == (None, None, 1)
    assert "Connection refused" in row.last_error  # the fast path tried, failed, and said why
    assert row.relay_after <= timezone.now()  # so the very next sweep sends it

    assert relay.sweep(min_age_seconds=0)["orders"] == 1
    wait_handled(event_id)
    wait_handled(event_id, AUDIT_CONSUMER, alias="catalog")
    assert control.attempts(PINGED_CONSUMER, event_id) == 1


def test_a_publisher_killed_after_commit_is_delivered_by_the_beat_sweeper(worker_factory):
    worker_factory(beat=True, env={"EVENTS_REDELIVER_AFTER_SECONDS": 2})
    result = publish_from_another_process("--die-after-commit", EVENTS_REDELIVER_AFTER_SECONDS=2)
    assert result.returncode == -9, result.stderr  # SIGKILLed after the commit, before any send
    event_id = result.stdout.strip()
    assert OutboxMessage.objects.filter(id=event_id, sent_at__isnull=True, delivered_at__isnull=True).exists()

    wait_handled(event_id, timeout=45)
    wait_handled(event_id, AUDIT_CONSUMER, alias="catalog", timeout=45)
    row = OutboxMessage.objects.get(id=event_id)
    assert row.sent_at is not None  # the sweeper sent it, the fast path never did


def test_the_same_message_delivered_three_times_has_one_effect(settings, celery_worker):
    settings.EVENTS_FAST_PATH = False  # this test sends the message itself
    event_id = ping("thrice")
    wire = OutboxMessage.objects.get(id=event_id).envelope
    sub = bus.subscriber_by_consumer(PINGED_CONSUMER)

    for _ in range(3):
        deliver.apply_async(args=[[[sub.consumer, wire]]], queue=sub.queue)

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    def all_three_consumed_and_acknowledged():
        return handled(PINGED_CONSUMER, event_id) == 1 and broker.llen(sub.queue) == 0 and not broker.hlen("unacked")

    wait_until(all_three_consumed_and_acknowledged, timeout=30, message="three deliveries")
    assert handled(PINGED_CONSUMER, event_id) == 1
    assert control.attempts(PINGED_CONSUMER, event_id) == 1  # the handler itself ran once


def test_two_relays_at_once_send_each_of_1000_events_once_per_subscriber(settings, celery_worker):
    settings.EVENTS_FAST_PATH = False  # leave all 1,000 rows to the two relays
    with transaction.atomic(using="orders"):
        ids = {publish(PINGED, {"note": f"n{i}", "tier": 1}, aggregate_id=i, using="orders").id for i in range(1000)}
    sent: list[tuple[str, str]] = []
    lock = threading.Lock()
    both_claiming = threading.Barrier(2, timeout=30)
    first_send = threading.local()
    errors = []

    def counting_send(sub, wire):
        if not getattr(first_send, "done", False):
            first_send.done = True
            both_claiming.wait()  # both relays now hold row locks at the same time
        with lock:
            sent.append((sub.consumer, wire["id"]))
        relay.send_via_celery(sub, wire)

    def run_relay():
        try:
            relay.dispatch("orders", send=counting_send, after_commit=False, limit=50)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    relays = [threading.Thread(target=run_relay) for _ in range(2)]
    for thread in relays:
        thread.start()
    for thread in relays:
        thread.join(timeout=120)

    assert errors == []
    assert len(sent) == 2000
    assert set(sent) == {(consumer, i) for consumer in (PINGED_CONSUMER, AUDIT_CONSUMER) for i in ids}
    assert set(OutboxMessage.objects.values_list("attempts", flat=True)) == {1}  # each row claimed once

    def all_handled():
        return (
            InboxMessage.objects.filter(consumer=PINGED_CONSUMER).count() == 1000
            and CatalogInbox.objects.using("catalog").filter(consumer=AUDIT_CONSUMER).count() == 1000
        )

    wait_until(all_handled, timeout=120, interval=0.5, message="2,000 deliveries")


def test_an_always_failing_handler_is_dead_lettered_then_replayed_once(worker_factory):
    from django.core.management import call_command

    worker_factory(env=FAST_RETRIES)
    control.set_mode(PINGED_CONSUMER, "always")
    event_id = ping("hopeless")

    letter = wait_until(
        lambda: DeadLetter.objects.filter(event_id=event_id).first(), timeout=30, message="the dead letter"
    )
    wait_handled(event_id, AUDIT_CONSUMER, alias="catalog")  # the other subscriber is unaffected
    assert letter.attempts == FAST_RETRIES["EVENTS_MAX_ATTEMPTS"]
    assert control.attempts(PINGED_CONSUMER, event_id) == FAST_RETRIES["EVENTS_MAX_ATTEMPTS"]
    assert letter.error.startswith("ProbeFailure")
    assert handled(PINGED_CONSUMER, event_id) == 0

    control.set_mode(PINGED_CONSUMER, "ok")  # "fix the handler"
    call_command("events", "replay", str(letter.id))
    call_command("events", "replay", str(letter.id))

    assert handled(PINGED_CONSUMER, event_id) == 1
    assert control.attempts(PINGED_CONSUMER, event_id) == FAST_RETRIES["EVENTS_MAX_ATTEMPTS"] + 1
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.REPLAYED


def test_a_v1_event_reaches_the_v2_only_handler_upcast(celery_worker):
    result = publish_from_another_process("--version", "1")  # an old producer
    assert result.returncode == 0, result.stderr
    event_id = result.stdout.strip()
    assert OutboxMessage.objects.get(id=event_id).envelope["version"] == 1

    wait_handled(event_id)
    seen = control.seen(PINGED_CONSUMER, event_id)
    assert (seen["version"], seen["tier"]) == (2, 1)


@pytest.mark.urls("tests.support.eventprobe.urls")
def test_correlation_flows_from_request_to_envelope_task_logs_and_follow_up_events(client, celery_worker):
    response = client.post(
        "/probe/ping", data={"reply": True}, content_type="application/json", HTTP_X_CORRELATION_ID="corr-evt-42"
    )
    assert response.status_code == 201
    ping_id = response.json()["eventId"]
    assert OutboxMessage.objects.get(id=ping_id).envelope["correlationId"] == "corr-evt-42"

    pong = wait_until(
        lambda: OutboxMessage.objects.filter(event_type=PONGED).first(), timeout=30, message="the pong event"
    )
    assert (pong.envelope["correlationId"], pong.envelope["causationId"]) == ("corr-evt-42", ping_id)
    wait_handled(pong.envelope["id"], PONGED_CONSUMER)

    seen = control.seen(PINGED_CONSUMER, ping_id)
    assert seen["correlationId"] == "corr-evt-42"
    assert seen["causationId"] == ping_id

    def handler_log_line():
        for line in celery_worker.log().splitlines():
            if line.startswith("{") and '"probe_pinged_handled"' in line:
                return json.loads(line)
        return None

    record = wait_until(handler_log_line, timeout=10, message="the handler's log line")
    assert (record["correlation_id"], record["event_id"]) == ("corr-evt-42", ping_id)
