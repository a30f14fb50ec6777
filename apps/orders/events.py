"""Domain events published by the orders context (schemas are the contract; bump the version to change one).

Money travels as decimal strings ("12.50"), never floats. ``order.created`` is published as
v2; v1 (the spec's original shape) stays registered with an upcaster so an old v1 message
still sitting in an outbox or a dead-letter table reaches handlers in the v2 shape. v1 never
carried customer, prices or payment, so upcast events have ``null`` there: a consumer that
needs them reads the order (only the orders context itself does).
"""

from shop.events import register_event, register_upcaster, schemas

ORDER_CREATED = "order.created"
ORDER_STATUS_CHANGED = "order.status_changed"
ORDER_CONFIRMED = "order.confirmed"
ORDER_CANCELLED = "order.cancelled"
ORDER_CANCEL_REQUESTED = "order.cancel_requested"
ORDER_SHIPPED = "order.shipped"
ORDER_DELIVERED = "order.delivered"

_STATUS = {"enum": ["PENDING", "CONFIRMED", "SHIPPED", "DELIVERED", "CANCELLED"]}


def _object(required: dict, optional: dict | None = None) -> dict:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": False,
    }


register_event(
    ORDER_CREATED,
    1,
    _object(
        {
            "orderId": schemas.UUID,
            "items": {
                "type": "array",
                "minItems": 1,
                "items": _object({"productId": schemas.UUID, "quantity": {"type": "integer", "minimum": 1}}),
            },
        }
    ),
    description="An order was placed (spec section 6, original shape).",
)

register_event(
    ORDER_CREATED,
    2,
    _object(
        {
            "orderId": schemas.UUID,
            "customerId": {"anyOf": [schemas.UUID, {"type": "null"}]},
            "currency": {"anyOf": [{"type": "string", "pattern": "^[A-Z]{3}$"}, {"type": "null"}]},
            "total": {"anyOf": [schemas.MONEY, {"type": "null"}]},
            "paymentMethod": {"anyOf": [{"enum": ["card"]}, {"type": "null"}]},
            "items": {
                "type": "array",
                "minItems": 1,
                "items": _object(
                    {
                        "productId": schemas.UUID,
                        "quantity": {"type": "integer", "minimum": 1},
                        "price": {"anyOf": [schemas.MONEY, {"type": "null"}]},
                    }
                ),
            },
        }
    ),
    description="An order was placed: adds the customer, unit prices, currency, total and payment method. "
    "The card token is never in an event.",
)


@register_upcaster(ORDER_CREATED, 1)
def order_created_v1_to_v2(data: dict) -> dict:
    return {
        "orderId": data["orderId"],
        "customerId": None,
        "currency": None,
        "total": None,
        "paymentMethod": None,
        "items": [{"productId": i["productId"], "quantity": i["quantity"], "price": None} for i in data["items"]],
    }


register_event(
    ORDER_STATUS_CHANGED,
    1,
    _object(
        {"orderId": schemas.UUID, "customerId": schemas.UUID, "from": _STATUS, "to": _STATUS},
        {"note": {"type": "string"}},
    ),
    description="Every status transition, with the history note.",
)

for _type, _extra, _description in (
    (ORDER_CONFIRMED, {}, "Stock reserved and payment authorized: the order is confirmed."),
    (ORDER_CANCELLED, {"reason": {"type": "string"}, "previousStatus": _STATUS}, "An order was cancelled."),
    (
        ORDER_CANCEL_REQUESTED,
        {"reason": {"type": "string"}, "previousStatus": _STATUS},
        "A customer or staff cancelled the order through the API; the checkout saga compensates "
        "(release stock, void or refund the payment).",
    ),
    (ORDER_SHIPPED, {"trackingNumber": {"type": "string"}}, "Staff shipped the order."),
    (ORDER_DELIVERED, {}, "The order was delivered."),
):
    register_event(
        _type, 1, _object({"orderId": schemas.UUID, "customerId": schemas.UUID, **_extra}), description=_description
    )

# Commands the checkout saga sends to inventory and payments (declared with the saga).
from apps.orders.saga.commands import (  # noqa: E402, F401
    PAYMENT_AUTHORIZATION_REQUESTED,
    PAYMENT_CAPTURE_REQUESTED,
    PAYMENT_REVERSAL_REQUESTED,
    STOCK_RELEASE_REQUESTED,
    STOCK_RESERVATION_REQUESTED,
)
