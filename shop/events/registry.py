"""Event schemas by (type, version), and upcasters from each version to the next.

Publishing contexts declare their events in their own ``events.py``; consumers only ever
see the newest version because ``upcast`` runs before any handler.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema_rs

from shop.events.envelope import Envelope


class EventSchemaError(ValueError):
    """Unregistered event type/version, or data that does not match its schema."""


class UnknownEvent(EventSchemaError):
    """No schema for this type/version in this process.

    A consumer may meet it during a rolling deploy (the publisher already runs newer code),
    so deliveries treat it as transient: a retry after the deploy succeeds.
    """


class InvalidEventData(EventSchemaError):
    """The data does not match the registered schema: permanent, no retry can fix it."""


@dataclass(frozen=True)
class EventSpec:
    type: str
    version: int
    schema: dict[str, Any]
    description: str = ""


_specs: dict[tuple[str, int], EventSpec] = {}
_upcasters: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}
# jsonschema-rs validates an envelope in microseconds (the pure-Python validator took a large
# share of a delivery's CPU); jsonschema itself still checks that each schema is well formed.
_validators: dict[tuple[str, int], jsonschema_rs.Draft202012Validator] = {}
# The newest version of each type, kept as types are registered: every publish and every
# delivery asks, and scanning every spec for it was 1 % of the worker's CPU at saturation.
_latest: dict[str, int] = {}


def register_event(type: str, version: int, schema: dict[str, Any], *, description: str = "") -> EventSpec:
    key = (type, version)
    spec = EventSpec(type=type, version=version, schema=schema, description=description)
    existing = _specs.get(key)
    if existing is not None and existing.schema != schema:
        raise EventSchemaError(f"{type} v{version} registered twice with different schemas")
    jsonschema.Draft202012Validator.check_schema(schema)
    _specs[key] = spec
    _latest[type] = max(version, _latest.get(type, version))
    # "format" is enforced (uuid, email, ...): a schema that says uuid means it.
    _validators[key] = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    return spec


def register_upcaster(type: str, from_version: int):
    """Decorate ``fn(data_v_n) -> data_v_n+1``."""

    def decorator(fn):
        _upcasters[(type, from_version)] = fn
        return fn

    return decorator


def has_upcaster(type: str, from_version: int) -> bool:
    return (type, from_version) in _upcasters


def latest_version(type: str) -> int:
    try:
        return _latest[type]
    except KeyError:
        raise UnknownEvent(f"Unknown event type {type!r}; declare it in the publisher's events.py") from None


def validate(type: str, version: int, data: dict[str, Any]) -> None:
    validator = _validators.get((type, version))
    if validator is None:
        raise UnknownEvent(f"Unregistered event {type} v{version}")
    if validator.is_valid(data):
        return
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.instance_path])
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.instance_path) or "<root>"
        raise InvalidEventData(f"{type} v{version} invalid at {where}: {first.message}")


def upcast(envelope: Envelope) -> Envelope:
    target = latest_version(envelope.type)
    while envelope.version < target:
        fn = _upcasters.get((envelope.type, envelope.version))
        if fn is None:
            raise UnknownEvent(f"No upcaster for {envelope.type} v{envelope.version}")
        envelope = envelope.with_data(version=envelope.version + 1, data=fn(envelope.data))
    validate(envelope.type, envelope.version, envelope.data)
    return envelope


def all_specs() -> list[EventSpec]:
    return sorted(_specs.values(), key=lambda spec: (spec.type, spec.version))
