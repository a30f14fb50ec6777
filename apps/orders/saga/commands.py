"""Commands the saga sends to other contexts, as events on the bus (versioned schemas).

Commands are ordinary outbox events owned by the orders context; the receiving context
subscribes to them and answers with its own reply events. Re-sending a command (timeouts)
is safe because every receiver is idempotent per order (reservation per order id, payment
calls per idempotency key).
"""

from shop.events import register_event, register_upcaster, schemas

_ORDER_ONLY = {"type": "object", "required": ["orderId"], "properties": {"orderId": schemas.UUID}}

STOCK_RESERVATION_REQUESTED = "checkout.stock_reservation_requested"
PAYMENT_AUTHORIZATION_REQUESTED = "checkout.payment_authorization_requested"
PAYMENT_CAPTURE_REQUESTED = "checkout.payment_capture_requested"
PAYMENT_REVERSAL_REQUESTED = "checkout.payment_reversal_requested"
STOCK_RELEASE_REQUESTED = "checkout.stock_release_requested"

register_event(
    STOCK_RESERVATION_REQUESTED,
    1,
    {
        "type": "object",
        "required": ["orderId", "items"],
        "properties": {
            "orderId": schemas.UUID,
            "items": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["productId", "quantity"],
                    "properties": {"productId": schemas.UUID, "quantity": {"type": "integer", "minimum": 1}},
                },
            },
        },
    },
    description="Saga → inventory: reserve every line of the order, all or nothing.",
)
register_event(
    PAYMENT_AUTHORIZATION_REQUESTED,
    1,
    {
        "type": "object",
        "required": ["orderId", "amount", "currency", "token", "idempotencyKey"],
        "properties": {
            "orderId": schemas.UUID,
            "amount": schemas.MONEY_V1_LOOSE,
            "currency": {"type": "string", "minLength": 3, "maxLength": 3},
            "token": {"type": "string", "minLength": 1},
            "idempotencyKey": {"type": "string", "minLength": 1},
        },
    },
    description="Saga → payments (retired shape): carried the amount and the card token.",
)
register_event(
    PAYMENT_AUTHORIZATION_REQUESTED,
    2,
    {
        "type": "object",
        "required": ["orderId", "idempotencyKey"],
        "properties": {"orderId": schemas.UUID, "idempotencyKey": {"type": "string", "minLength": 1}},
        "additionalProperties": False,
    },
    description="Saga → payments: authorize the order. Payments reads the amount and the card token from the "
    "order (orders facade), so the token is never in an event, an outbox row or a dead letter.",
)


@register_upcaster(PAYMENT_AUTHORIZATION_REQUESTED, 1)
def authorization_requested_v1_to_v2(data: dict) -> dict:
    """An old command still in a queue or a dead letter: its token and amount are dropped unread."""
    return {"orderId": data["orderId"], "idempotencyKey": data["idempotencyKey"]}


register_event(
    PAYMENT_CAPTURE_REQUESTED,
    1,
    {
        "type": "object",
        "required": ["orderId", "idempotencyKey"],
        "properties": {"orderId": schemas.UUID, "idempotencyKey": {"type": "string", "minLength": 1}},
    },
    description="Saga → payments: capture the authorization of a confirmed order.",
)
register_event(
    PAYMENT_REVERSAL_REQUESTED,
    1,
    {
        "type": "object",
        "required": ["orderId", "reason"],
        "properties": {"orderId": schemas.UUID, "reason": {"type": "string"}},
    },
    description="Saga → payments: undo whatever the order's payment reached (void or refund); no-op if nothing.",
)
register_event(
    STOCK_RELEASE_REQUESTED,
    1,
    _ORDER_ONLY,
    description="Saga → inventory: release the order's reservation, or return committed units to stock.",
)
