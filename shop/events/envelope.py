"""The event envelope: the only shape that crosses a context boundary."""

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any


def _copied(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars): what ``dataclasses.asdict`` did
    here, without its generic recursion over dataclass fields."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class MalformedEnvelope(ValueError):
    """A message that is not an event envelope at all: no retry can make it one."""


@dataclass(frozen=True)
class Envelope:
    type: str
    version: int
    aggregate_id: str
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: str = field(default_factory=_now_iso)
    correlation_id: str | None = None
    causation_id: str | None = None
    # Optional, about the delivery rather than the fact: the W3C trace context of the
    # publishing span (``traceparent``, ``tracestate``; shop.observability.tracing).
    metadata: dict[str, str] | None = None

    def to_wire(self) -> dict[str, Any]:
        """camelCase keys, as documented for the event contract. The data and metadata are
        copies: the wire dict goes on to be stored and sent, and must not share them."""
        wire = {
            "id": self.id,
            "type": self.type,
            "version": self.version,
            "occurredAt": self.occurred_at,
            "aggregateId": self.aggregate_id,
            "correlationId": self.correlation_id,
            "causationId": self.causation_id,
            "data": _copied(self.data),
        }
        if self.metadata:
            wire["metadata"] = dict(self.metadata)
        return wire

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> "Envelope":
        try:
            envelope = cls(
                id=str(uuid.UUID(str(wire["id"]))),
                type=wire["type"],
                version=int(wire["version"]),
                occurred_at=wire["occurredAt"],
                aggregate_id=wire["aggregateId"],
                correlation_id=wire.get("correlationId"),
                causation_id=wire.get("causationId"),
                data=wire["data"],
                metadata=wire.get("metadata") if isinstance(wire.get("metadata"), dict) else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedEnvelope(f"not an event envelope: {exc!r}") from exc
        if not isinstance(envelope.data, dict):
            raise MalformedEnvelope("envelope data must be an object")
        return envelope

    def with_data(self, *, version: int, data: dict[str, Any]) -> "Envelope":
        return replace(self, version=version, data=data)
