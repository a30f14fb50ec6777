"""Domain events published by the payments context (schemas are the contract; bump the version to change one).

One shape for every payment event: the payment's state after the step, and the step's amount.
"""

from shop.events import register_event, register_upcaster, schemas

PAYMENT_AUTHORIZED = "payment.authorized"
PAYMENT_FAILED = "payment.failed"
PAYMENT_CAPTURED = "payment.captured"
PAYMENT_VOIDED = "payment.voided"
PAYMENT_REFUNDED = "payment.refunded"

EVENT_FOR_LEDGER_TYPE = {
    "AUTHORIZED": PAYMENT_AUTHORIZED,
    "DECLINED": PAYMENT_FAILED,
    "CAPTURED": PAYMENT_CAPTURED,
    "VOIDED": PAYMENT_VOIDED,
    "REFUNDED": PAYMENT_REFUNDED,
}

_SCHEMA = {
    "type": "object",
    "required": ["paymentId", "orderId", "status", "amount", "currency", "capturedAmount", "refundedAmount"],
    "properties": {
        "paymentId": schemas.UUID,
        "orderId": schemas.UUID,
        "status": {"enum": ["AUTHORIZED", "CAPTURED", "VOIDED", "REFUNDED", "PARTIALLY_REFUNDED", "FAILED"]},
        "amount": schemas.MONEY,
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "capturedAmount": schemas.MONEY,
        "refundedAmount": schemas.MONEY,
        "declineCode": {"type": ["string", "null"]},
    },
    "additionalProperties": False,
}

for _type in EVENT_FOR_LEDGER_TYPE.values():
    register_event(_type, 1, _SCHEMA, description=f"Payment step: {_type.split('.')[1]}.")

# Replies to the checkout saga's commands (see apps/payments/checkout.py). Published on every
# handled command, also when the idempotency log replays an earlier provider outcome.
AUTHORIZATION_SUCCEEDED = "payment.authorization_succeeded"
AUTHORIZATION_FAILED = "payment.authorization_failed"
CAPTURE_SUCCEEDED = "payment.capture_succeeded"
CAPTURE_FAILED = "payment.capture_failed"
REVERSED = "payment.reversed"

_REPLY = {
    "type": "object",
    "required": ["orderId"],
    "properties": {
        "orderId": schemas.UUID,
        "paymentId": {"type": ["string", "null"]},
        "status": {"type": "string"},
        "declined": {"type": "boolean"},
        "declineCode": {"type": ["string", "null"]},
        "message": {"type": "string"},
        "outcome": {"enum": ["NONE", "VOIDED", "REFUNDED"]},
    },
}
for _type, _description in (
    (AUTHORIZATION_SUCCEEDED, "The order's payment is authorized."),
    (AUTHORIZATION_FAILED, "Authorization failed: declined=true for a card decline, false for a provider failure."),
    (CAPTURE_SUCCEEDED, "The order's authorization is captured."),
    (CAPTURE_FAILED, "Capture failed after retries."),
    (REVERSED, "Whatever the order's payment reached is undone (outcome NONE, VOIDED or REFUNDED)."),
):
    register_event(_type, 1, _REPLY, description=_description)

# v2 of the authorization reply says what was authorized; the saga confirms only the order's total.
register_event(
    AUTHORIZATION_SUCCEEDED,
    2,
    {**_REPLY, "properties": {**_REPLY["properties"], "amount": schemas.MONEY}},
    description="The order's payment is authorized, for ``amount`` (the saga checks it against the order total).",
)


@register_upcaster(AUTHORIZATION_SUCCEEDED, 1)
def authorization_succeeded_v1_to_v2(data: dict) -> dict:
    """An old reply did not say the amount; it stays absent (and unchecked)."""
    return data


# v2 of the failure says whether the provider may have authorized all the same (no answer came back,
# so nothing is known of what the key did): the saga then has payments ask again and void what it made.
register_event(
    AUTHORIZATION_FAILED,
    2,
    {
        **_REPLY,
        "required": [*_REPLY["required"], "declined", "mayBeAuthorized"],
        "properties": {**_REPLY["properties"], "mayBeAuthorized": {"type": "boolean"}},
    },
    description="Authorization failed: declined=true for a card decline; mayBeAuthorized=true when no "
    "answer came back from the provider, so it may have authorized.",
)


@register_upcaster(AUTHORIZATION_FAILED, 1)
def authorization_failed_v1_to_v2(data: dict) -> dict:
    """An old failure did not say; any failure but a decline may have left an authorization."""
    return {**data, "mayBeAuthorized": not data.get("declined", False)}
