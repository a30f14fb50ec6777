"""Domain events published by the payments context (schemas are the contract; bump the version to change one).

One shape for every payment event: the payment's state after the step, and the step's amount.
"""

from shop.events import register_event

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

_MONEY = {"type": "string", "pattern": r"^-?\d+\.\d{2}$"}
_SCHEMA = {
    "type": "object",
    "required": ["paymentId", "orderId", "status", "amount", "currency", "capturedAmount", "refundedAmount"],
    "properties": {
        "paymentId": {"type": "string", "format": "uuid"},
        "orderId": {"type": "string", "format": "uuid"},
        "status": {"enum": ["AUTHORIZED", "CAPTURED", "VOIDED", "REFUNDED", "PARTIALLY_REFUNDED", "FAILED"]},
        "amount": _MONEY,
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "capturedAmount": _MONEY,
        "refundedAmount": _MONEY,
        "declineCode": {"type": ["string", "null"]},
    },
    "additionalProperties": False,
}

for _type in EVENT_FOR_LEDGER_TYPE.values():
    register_event(_type, 1, _SCHEMA, description=f"Payment step: {_type.split('.')[1]}.")
