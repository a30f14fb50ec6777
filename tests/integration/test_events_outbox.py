"""Publishing, the inbox, retries, dead letters, metrics and housekeeping, in-process.

Real PostgreSQL and Redis; no worker (tests/integration/test_events_delivery.py has those).
"""

import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connections, transaction
from django.utils import timezone
from prometheus_client import REGISTRY

from apps.catalog.models import InboxMessage as CatalogInbox
from apps.orders.models import DeadLetter, InboxMessage, OutboxMessage
from shop.events import inbox, publish, registry, relay
from shop.events.outbox import NotInTransaction
from shop.events.tasks import deliver
from shop.observability import metrics
from shop.observability.context import correlation_id_var
from tests.conftest import CONTEXT_DBS
from tests.support.eventprobe import control
from tests.support.eventprobe.events import PINGED, PONGED
from tests.support.eventprobe.handlers import AUDIT_CONSUMER, PINGED_CONSUMER, PONGED_CONSUMER
from tests.support.events import drain
from tests.support.metrics import scraped_value

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def ping(note="hi", *, version=None, reply=False, alias="orders", **extra):
    data = {"note": note, **({} if version == 1 else {"tier": 2}), **extra}
    if reply:
        data["reply"] = True
    with transaction.atomic(using=alias):
        return publish(PINGED, data, aggregate_id="agg-1", using=alias, version=version)


def test_publish_writes_the_envelope_in_the_callers_transaction():
    token = correlation_id_var.set("corr-outbox-1")
    try:
        envelope = ping("stored")
    finally:
        correlation_id_var.reset(token)

    row = OutboxMessage.objects.get(id=envelope.id)
    assert (row.event_type, row.version, row.aggregate_id, row.sent_at) == (PINGED, 2, "agg-1", None)
    assert row.envelope == envelope.to_wire()
    assert row.envelope["correlationId"] == "corr-outbox-1"
    assert row.envelope["data"] == {"note": "stored", "tier": 2}


@pytest.mark.parametrize(
    ("event_type", "data", "error"),
    [
        ("probe.never_registered", {}, registry.UnknownEvent),
        (PINGED, {"note": "no tier"}, registry.InvalidEventData),
        (PINGED, {"note": "x", "tier": "high"}, registry.InvalidEventData),
    ],
)
def test_a_bad_event_fails_and_rolls_back_the_publishers_transaction(event_type, data, error):
    with pytest.raises(error), transaction.atomic(using="orders"):
        publish(PINGED, {"note": "good one", "tier": 1}, aggregate_id="a", using="orders")
        publish(event_type, data, aggregate_id="a", using="orders")
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)
def test_publish_outside_a_transaction_raises():
    with pytest.raises(NotInTransaction):
        publish(PINGED, {"note": "loose", "tier": 1}, aggregate_id="a", using="orders")
    # A transaction on another alias does not count: the row must commit with *this* one.
    with pytest.raises(NotInTransaction), transaction.atomic(using="catalog"):
        publish(PINGED, {"note": "wrong alias", "tier": 1}, aggregate_id="a", using="orders")
    assert not OutboxMessage.objects.exists()


def test_published_is_counted_on_commit_only(settings, django_capture_on_commit_callbacks):
    settings.EVENTS_FAST_PATH = False
    before = metric("events_published_total", type=PINGED)
    with (
        pytest.raises(RuntimeError),
        django_capture_on_commit_callbacks(using="orders", execute=True),
        transaction.atomic(using="orders"),
    ):
        publish(PINGED, {"note": "doomed", "tier": 1}, aggregate_id="a", using="orders")
        raise RuntimeError("rollback")
    assert metric("events_published_total", type=PINGED) == before

    with django_capture_on_commit_callbacks(using="orders", execute=True) as callbacks:
        ping("kept")
    assert len(callbacks) == 1
    assert metric("events_published_total", type=PINGED) == before + 1


def test_drain_delivers_to_every_subscriber_once_with_v1_upcast():
    envelope = ping("old shape", version=1)

    assert drain() == 1
    assert drain() == 0

    assert InboxMessage.objects.filter(consumer=PINGED_CONSUMER, event_id=envelope.id).count() == 1
    assert CatalogInbox.objects.using("catalog").filter(consumer=AUDIT_CONSUMER, event_id=envelope.id).count() == 1
    seen = control.seen(PINGED_CONSUMER, envelope.id)
    assert (seen["version"], seen["tier"]) == (2, 1)
    assert OutboxMessage.objects.get(id=envelope.id).sent_at is not None


def test_a_handler_publishing_carries_the_correlation_and_causation_on():
    token = correlation_id_var.set("corr-chain-7")
    try:
        first = ping("chain", reply=True)
    finally:
        correlation_id_var.reset(token)

    assert drain() == 2  # the ping, then the pong its handler published

    pong = OutboxMessage.objects.get(event_type=PONGED)
    assert pong.envelope["correlationId"] == "corr-chain-7"
    assert pong.envelope["causationId"] == first.id
    assert pong.envelope["data"] == {"pingId": first.id}
    assert control.attempts(PONGED_CONSUMER, pong.envelope["id"]) == 1


def test_a_duplicate_delivery_is_a_counted_no_op():
    envelope = ping("dup")
    wire = envelope.to_wire()
    delivered = metric("events_delivered_total", consumer=PINGED_CONSUMER)
    duplicates = metric("events_duplicate_total", consumer=PINGED_CONSUMER)

    assert inbox.handle(PINGED_CONSUMER, wire) is True
    assert inbox.handle(PINGED_CONSUMER, wire) is False
    assert inbox.handle(PINGED_CONSUMER, wire) is False

    assert control.attempts(PINGED_CONSUMER, envelope.id) == 1
    assert InboxMessage.objects.filter(consumer=PINGED_CONSUMER).count() == 1
    assert metric("events_delivered_total", consumer=PINGED_CONSUMER) == delivered + 1
    assert metric("events_duplicate_total", consumer=PINGED_CONSUMER) == duplicates + 2


def test_a_failing_handler_leaves_no_inbox_row_so_the_retry_runs_it():
    envelope = ping("flaky")
    control.set_mode(PINGED_CONSUMER, "fail:1")
    with pytest.raises(RuntimeError):
        inbox.handle(PINGED_CONSUMER, envelope.to_wire())
    assert not InboxMessage.objects.exists()
    assert inbox.handle(PINGED_CONSUMER, envelope.to_wire()) is True
    assert control.attempts(PINGED_CONSUMER, envelope.id) == 2


def test_deliver_retries_transient_failures_then_succeeds(settings):
    settings.EVENTS_MAX_ATTEMPTS = 5
    envelope = ping("transient")
    control.set_mode(PINGED_CONSUMER, "fail:2")
    retried = metric("events_retried_total", consumer=PINGED_CONSUMER)

    deliver.apply(args=[[[PINGED_CONSUMER, envelope.to_wire()]]])

    assert control.attempts(PINGED_CONSUMER, envelope.id) == 3
    assert InboxMessage.objects.filter(event_id=envelope.id).count() == 1
    assert not DeadLetter.objects.exists()
    assert metric("events_retried_total", consumer=PINGED_CONSUMER) == retried + 2


def test_deliver_dead_letters_after_max_attempts(settings):
    settings.EVENTS_MAX_ATTEMPTS = 3
    envelope = ping("hopeless")
    control.set_mode(PINGED_CONSUMER, "always")
    dead = metric("events_dead_lettered_total", consumer=PINGED_CONSUMER)

    deliver.apply(args=[[[PINGED_CONSUMER, envelope.to_wire()]]])

    letter = DeadLetter.objects.get()
    assert (letter.consumer, str(letter.event_id), letter.attempts) == (PINGED_CONSUMER, envelope.id, 3)
    assert letter.error.startswith("ProbeFailure: asked to fail")
    assert control.attempts(PINGED_CONSUMER, envelope.id) == 3
    assert metric("events_dead_lettered_total", consumer=PINGED_CONSUMER) == dead + 1


def test_invalid_data_is_dead_lettered_at_once_without_retries(settings):
    settings.EVENTS_MAX_ATTEMPTS = 5
    wire = ping("valid").to_wire() | {"id": str(uuid.uuid4()), "data": {"note": 5, "tier": 2}}

    deliver.apply(args=[[[PINGED_CONSUMER, wire]]])

    letter = DeadLetter.objects.get()
    assert letter.attempts == 1
    assert letter.error.startswith("InvalidEventData")
    assert control.attempts(PINGED_CONSUMER, wire["id"]) == 0


def _dead_letter(note="parked"):
    envelope = ping(note)
    inbox.dead_letter(PINGED_CONSUMER, envelope.to_wire(), RuntimeError("broken handler"), 5)
    return DeadLetter.objects.get(event_id=envelope.id), envelope


def test_replay_command_processes_a_dead_letter_once(capsys):
    letter, envelope = _dead_letter()

    call_command("events", "dead-letters")
    assert str(letter.id) in capsys.readouterr().out

    call_command("events", "replay", str(letter.id))
    call_command("events", "replay", str(letter.id))  # again: the inbox makes it a no-op
    call_command("events", "replay", "--all-failed")  # nothing FAILED is left

    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.REPLAYED
    assert letter.replayed_at is not None
    assert InboxMessage.objects.filter(event_id=envelope.id).count() == 1
    assert control.attempts(PINGED_CONSUMER, envelope.id) == 1


def test_replay_that_fails_again_keeps_the_letter_and_says_so():
    letter, envelope = _dead_letter()
    control.set_mode(PINGED_CONSUMER, "always")
    with pytest.raises(CommandError, match="failed again"):
        call_command("events", "replay", "--all-failed")
    letter.refresh_from_db()
    assert (letter.status, letter.attempts) == (DeadLetter.Status.FAILED, 6)
    with pytest.raises(CommandError, match="No dead letter"):
        call_command("events", "replay", str(uuid.uuid4()))


def test_the_fast_path_stands_aside_after_repeated_failures():
    breaker = relay._fast_path_breaker
    breaker.close()
    try:
        unsendable = {"id": str(uuid.uuid4()), "type": PINGED, "data": {"note": {1, 2}}}  # not JSON
        for _ in range(breaker.fail_max):
            relay.send_after_commit("orders", unsendable)  # fails, never raises
        assert breaker.current_state == "open"
        # On the dashboards and in the CircuitBreakerOpen alert, as the runbook says (it reported nothing).
        assert metrics.circuit_open.labels("events-fast-path")._value.get() == 1
        waiting = ping("while the breaker is open")
        relay.send_after_commit("orders", waiting.to_wire())
        row = OutboxMessage.objects.get(id=waiting.id)
        assert row.relay_after <= timezone.now()  # due for the very next sweep
        assert row.delivered_at is None
    finally:
        breaker.close()


def test_sweep_skips_fresh_rows_and_scrape_reports_the_outbox_lag():
    envelope = ping("waiting")
    two_minutes_ago = timezone.now() - timedelta(seconds=120)
    OutboxMessage.objects.filter(id=envelope.id).update(created_at=two_minutes_ago, relay_after=two_minutes_ago)

    sent = relay.sweep(min_age_seconds=3600)  # too young for this sweep: left alone, but measured

    assert sent["orders"] == 0
    assert 120 <= scraped_value("events_outbox_lag_seconds", context="orders") < 200
    assert scraped_value("events_outbox_lag_seconds", context="catalog") == 0


def test_dispatch_sends_each_row_to_each_subscriber_and_marks_it():
    first, second = ping("a"), ping("b")
    sent = []

    assert relay.dispatch("orders", send=lambda sub, wire: sent.append((sub.consumer, wire["id"]))) == 2
    assert relay.dispatch("orders", send=lambda sub, wire: sent.append((sub.consumer, wire["id"]))) == 0

    assert sorted(sent) == sorted(
        (consumer, event.id) for consumer in (AUDIT_CONSUMER, PINGED_CONSUMER) for event in (first, second)
    )
    assert set(OutboxMessage.objects.values_list("attempts", flat=True)) == {1}


def test_prune_deletes_only_what_was_delivered_before_the_retention(settings):
    settings.EVENTS_RETENTION_DAYS, settings.EVENTS_INBOX_RETENTION_DAYS = 7, 30
    old_sent, fresh_sent, old_unsent = ping("old"), ping("fresh"), ping("never delivered")
    long_ago = timezone.now() - timedelta(days=8)
    OutboxMessage.objects.filter(id=old_sent.id).update(delivered_at=long_ago)
    OutboxMessage.objects.filter(id=fresh_sent.id).update(delivered_at=timezone.now())
    OutboxMessage.objects.filter(id=old_unsent.id).update(created_at=long_ago)
    InboxMessage.objects.create(consumer="c", event_id=uuid.uuid4(), event_type=PINGED)
    InboxMessage.objects.create(consumer="c", event_id=uuid.uuid4(), event_type=PINGED)
    InboxMessage.objects.filter(pk=InboxMessage.objects.first().pk).update(
        processed_at=timezone.now() - timedelta(days=31)
    )

    call_command("events", "prune")

    assert set(OutboxMessage.objects.values_list("id", flat=True)) == {
        uuid.UUID(fresh_sent.id), uuid.UUID(old_unsent.id),
    }  # fmt: skip
    assert InboxMessage.objects.count() == 1


def test_prune_deletes_a_backlog_in_batches_each_its_own_statement(settings, monkeypatch):
    """One DELETE of a backlog outlived the statement timeout every hour and never caught up."""
    from django.test.utils import CaptureQueriesContext

    settings.EVENTS_RETENTION_DAYS = 7
    monkeypatch.setattr(relay, "PRUNE_BATCH", 2)
    old = [ping(f"old {n}") for n in range(5)]
    OutboxMessage.objects.filter(id__in=[e.id for e in old]).update(delivered_at=timezone.now() - timedelta(days=8))

    with CaptureQueriesContext(connections["orders"]) as queries:
        pruned = relay.prune()

    assert pruned["orders"] == 5 and not OutboxMessage.objects.exists()
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE") and "outbox" in q["sql"]]
    assert len(deletes) == 3


def test_every_context_database_has_the_event_tables():
    for alias in CONTEXT_DBS:
        tables = connections[alias].introspection.table_names()
        assert {f"{alias}_outboxmessage", f"{alias}_inboxmessage", f"{alias}_deadletter"} <= set(tables)
