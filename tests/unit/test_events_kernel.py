"""The event kernel's pure parts: envelope, registry/upcasters, subscriptions, checks, backoff."""

import ast
import uuid
from pathlib import Path

import pytest

from shop.events import bus, checks, inbox, registry
from shop.events.envelope import Envelope, MalformedEnvelope
from tests.support.eventprobe.events import PINGED
from tests.support.events import registrations_kept

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def isolated_registry():
    """Register throwaway types without leaking them into other tests (or the contract test)."""
    with registrations_kept():
        yield registry


def test_envelope_round_trips_through_the_camelcase_wire_format():
    envelope = Envelope(type="probe.pinged", version=2, aggregate_id="a1", data={"note": "x", "tier": 1})
    wire = envelope.to_wire()
    assert set(wire) == {
        "id", "type", "version", "occurredAt", "aggregateId", "correlationId", "causationId", "data",
    }  # fmt: skip
    assert Envelope.from_wire(wire) == envelope


@pytest.mark.parametrize(
    "wire",
    [{}, {"id": "not-a-uuid", "type": "t", "version": 1, "occurredAt": "x", "aggregateId": "a", "data": {}}],
)
def test_a_malformed_message_is_refused_as_such(wire):
    with pytest.raises(MalformedEnvelope):
        Envelope.from_wire(wire)


def test_validation_names_the_offending_field_and_enforces_formats(isolated_registry):
    registry.register_event(
        "unit.formatted",
        1,
        {"type": "object", "required": ["ref"], "properties": {"ref": {"type": "string", "format": "uuid"}}},
    )
    registry.validate("unit.formatted", 1, {"ref": str(uuid.uuid4())})
    with pytest.raises(registry.InvalidEventData, match="ref"):
        registry.validate("unit.formatted", 1, {"ref": "nope"})
    with pytest.raises(registry.UnknownEvent):
        registry.validate("unit.formatted", 2, {"ref": str(uuid.uuid4())})


def test_registering_a_version_twice_with_another_schema_is_refused(isolated_registry):
    registry.register_event("unit.twice", 1, {"type": "object"})
    registry.register_event("unit.twice", 1, {"type": "object"})  # same schema: idempotent
    with pytest.raises(registry.EventSchemaError):
        registry.register_event("unit.twice", 1, {"type": "object", "required": ["x"]})


def test_upcasting_walks_every_version_to_the_newest(isolated_registry):
    for version, required in ((1, ["a"]), (2, ["a", "b"]), (3, ["a", "b", "c"])):
        registry.register_event("unit.evolving", version, {"type": "object", "required": required})
    registry.register_upcaster("unit.evolving", 1)(lambda d: {**d, "b": 0})
    registry.register_upcaster("unit.evolving", 2)(lambda d: {**d, "c": d["b"] + 1})

    upcast = registry.upcast(Envelope(type="unit.evolving", version=1, aggregate_id="x", data={"a": 1}))

    assert (upcast.version, upcast.data) == (3, {"a": 1, "b": 0, "c": 1})


def test_the_newest_version_is_the_highest_registered_in_any_order_and_a_test_s_types_do_not_outlive_it():
    with registrations_kept():
        for version in (2, 3, 1):  # a context may declare an old version after a newer one
            registry.register_event("unit.out_of_order", version, {"type": "object"})
        assert registry.latest_version("unit.out_of_order") == 3
    with pytest.raises(registry.UnknownEvent):
        registry.latest_version("unit.out_of_order")


def test_the_probe_v1_ping_reaches_handlers_as_v2():
    v1 = Envelope(type=PINGED, version=1, aggregate_id="x", data={"note": "old"})
    assert registry.upcast(v1).data == {"note": "old", "tier": 1}
    assert registry.upcast(v1).version == 2


def test_a_missing_upcaster_is_reported_by_the_system_check(isolated_registry):
    registry.register_event("unit.gap", 1, {"type": "object"})
    registry.register_event("unit.gap", 2, {"type": "object"})
    errors = checks.check_upcasters()
    assert [e.id for e in errors if "unit.gap" in e.msg] == ["shop_events.E001"]
    with pytest.raises(registry.UnknownEvent, match="No upcaster"):
        registry.upcast(Envelope(type="unit.gap", version=1, aggregate_id="x", data={}))


def test_a_subscription_to_an_unregistered_type_is_a_start_up_error(isolated_registry):
    bus.subscriber("unit.nobody_publishes_this", consumer="unit.typo", context="orders")(lambda e: None)
    errors = [e for e in checks.check_subscriptions() if "unit.typo" in e.msg]
    assert [(e.id, e.is_serious()) for e in errors] == [("shop_events.E003", True)]


def _literal_subscriptions(source: str) -> list[int]:
    """Lines where ``subscriber(...)`` names its event type with a string literal."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == "subscriber"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]


def test_subscriptions_name_their_event_type_by_the_publishers_constant():
    """A literal can drift from the publisher's spelling; a constant from its events.py cannot."""
    assert _literal_subscriptions('@subscriber("order.created", consumer="x", context="orders")\ndef f(e): ...') == [1]
    found = {
        str(path.relative_to(ROOT)): lines
        for folder in ("apps", "shop")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (lines := _literal_subscriptions(path.read_text()))
    }
    assert found == {}


def test_the_installed_project_passes_its_event_checks():
    assert checks.check_subscriptions() == []
    assert checks.check_upcasters() == []
    assert checks.check_visibility_timeout() == []


def test_subscribers_need_a_known_context_and_a_unique_consumer_name(isolated_registry):
    with pytest.raises(ValueError, match="unknown context"):
        bus.subscriber(PINGED, consumer="unit.nowhere", context="warehouse")
    with pytest.raises(ValueError, match="already taken"):
        bus.subscriber(PINGED, consumer="eventprobe.on_pinged", context="orders")(lambda e: None)


def test_retry_delay_grows_exponentially_with_bounded_jitter(settings):
    settings.EVENTS_RETRY_BASE_SECONDS = 1.0
    for attempt, ceiling in ((1, 1), (2, 2), (3, 4), (6, 32), (20, 60)):
        delays = {inbox.retry_delay(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered
