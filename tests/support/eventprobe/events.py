"""Probe event types: ``probe.pinged`` exists in v1 and v2 (v2 added ``tier``), as a real event would evolve."""

from shop.events import register_event, register_upcaster, schemas

PINGED = "probe.pinged"
PONGED = "probe.ponged"
BENCHED = "probe.benched"

register_event(
    PINGED,
    1,
    {
        "type": "object",
        "required": ["note"],
        "properties": {"note": {"type": "string", "maxLength": 200}, "reply": {"type": "boolean"}},
        "additionalProperties": False,
    },
    description="A test ping (first shape).",
)
register_event(
    PINGED,
    2,
    {
        "type": "object",
        "required": ["note", "tier"],
        "properties": {
            "note": {"type": "string", "maxLength": 200},
            "tier": {"type": "integer", "minimum": 1},
            "reply": {"type": "boolean"},
        },
        "additionalProperties": False,
    },
    description="A test ping; v2 adds the required tier.",
)


@register_upcaster(PINGED, from_version=1)
def pinged_v1_to_v2(data: dict) -> dict:
    """v1 pings came from the only tier there was."""
    return {**data, "tier": 1}


register_event(
    PONGED,
    1,
    {
        "type": "object",
        "required": ["pingId"],
        "properties": {"pingId": schemas.UUID},
        "additionalProperties": False,
    },
    description="Published by the ping handler when a ping asks for a reply.",
)
register_event(
    BENCHED,
    1,
    {
        "type": "object",
        "required": ["seq"],
        "properties": {"seq": {"type": "integer", "minimum": 0}},
        "additionalProperties": False,
    },
    description="Benchmark traffic (bench/events.py).",
)
