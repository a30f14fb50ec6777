"""Domain events published by the inventory context (schemas are the contract; bump the version to change one)."""

from shop.events import register_event, schemas

STOCK_LOW = "inventory.stock_low"
RESERVATION_EXPIRED = "inventory.reservation_expired"

register_event(
    STOCK_LOW,
    1,
    {
        "type": "object",
        "required": ["productId", "available", "threshold"],
        "properties": {
            "productId": schemas.UUID,
            "available": {"type": "integer", "minimum": 0},
            "threshold": {"type": "integer", "minimum": 0},
        },
    },
    description="A product's available units fell to or below the low-stock threshold (emitted on the crossing).",
)

register_event(
    RESERVATION_EXPIRED,
    1,
    {
        "type": "object",
        "required": ["orderId", "productIds"],
        "properties": {"orderId": schemas.UUID, "productIds": {"type": "array", "items": schemas.UUID}},
    },
    description="An order's reservation was not committed in time; its units are available again.",
)

# Replies to the checkout saga's commands (see apps/inventory/checkout.py).
STOCK_RESERVED = "inventory.stock_reserved"
STOCK_RESERVATION_FAILED = "inventory.stock_reservation_failed"
STOCK_RELEASED = "inventory.stock_released"
STOCK_COMMIT_FAILED = "inventory.stock_commit_failed"

register_event(
    STOCK_RESERVED,
    1,
    {"type": "object", "required": ["orderId"], "properties": {"orderId": schemas.UUID}},
    description="Every line of the order is reserved.",
)
register_event(
    STOCK_RESERVATION_FAILED,
    1,
    {
        "type": "object",
        "required": ["orderId", "shortages"],
        "properties": {
            "orderId": schemas.UUID,
            "shortages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["productId", "available", "requested"],
                    "properties": {
                        "productId": schemas.UUID,
                        "available": {"type": "integer"},
                        "requested": {"type": "integer"},
                    },
                },
            },
        },
    },
    description="Nothing was reserved: at least one line is short (all or nothing).",
)
register_event(
    STOCK_RELEASED,
    1,
    {
        "type": "object",
        "required": ["orderId"],
        "properties": {
            "orderId": schemas.UUID,
            "releasedUnits": {"type": "integer", "minimum": 0},
            "returnedUnits": {"type": "integer", "minimum": 0},
        },
    },
    description="The order holds no stock any more (reservation released and/or committed units returned).",
)
register_event(
    STOCK_COMMIT_FAILED,
    1,
    {
        "type": "object",
        "required": ["orderId", "reason"],
        "properties": {"orderId": schemas.UUID, "reason": {"type": "string"}},
    },
    description="A confirmed order's reservation had expired and its units were sold meanwhile: "
    "nothing could be committed, so the checkout must be unwound.",
)
