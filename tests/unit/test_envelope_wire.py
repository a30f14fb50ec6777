"""The wire form of an envelope: camelCase keys, and data the envelope does not share."""

from shop.events.envelope import Envelope


def test_to_wire_copies_nested_data_so_a_change_to_the_wire_leaves_the_envelope_alone():
    envelope = Envelope(
        type="order.created", version=2, aggregate_id="a1",
        data={"items": [{"productId": "p1", "quantity": 1}], "total": "10.00"},
        metadata={"traceparent": "00-abc-def-01"},
    )  # fmt: skip

    wire = envelope.to_wire()
    wire["data"]["items"][0]["quantity"] = 99
    wire["metadata"]["traceparent"] = "changed"

    assert envelope.data["items"][0]["quantity"] == 1
    assert envelope.metadata["traceparent"] == "00-abc-def-01"
    assert Envelope.from_wire(envelope.to_wire()) == envelope


def test_to_wire_leaves_out_empty_metadata():
    wire = Envelope(type="order.created", version=2, aggregate_id="a1", data={}).to_wire()

    assert set(wire) == {"id", "type", "version", "occurredAt", "aggregateId", "correlationId", "causationId", "data"}
