"""Domain events published by the inventory context (schemas are the contract; bump the version to change one)."""

from shop.events import register_event

STOCK_LOW = "inventory.stock_low"
RESERVATION_EXPIRED = "inventory.reservation_expired"

_UUID = {"type": "string", "format": "uuid"}

register_event(
    STOCK_LOW,
    1,
    {
        "type": "object",
        "required": ["productId", "available", "threshold"],
        "properties": {
            "productId": _UUID,
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
        "properties": {"orderId": _UUID, "productIds": {"type": "array", "items": _UUID}},
    },
    description="An order's reservation was not committed in time; its units are available again.",
)
