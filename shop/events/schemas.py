"""JSON Schema fragments shared by every context's event schemas and the saga's commands.

One vocabulary for the wire: an id is ``UUID``, an amount of money is ``MONEY``. Each is a
plain dict, inlined where it is used, so every committed contract file
(``tests/contract/events/``) stays a standalone document.
"""

UUID = {"type": "string", "format": "uuid"}

# A decimal string with exactly two places ("12.50", "-3.00"), never a float.
MONEY = {"type": "string", "pattern": r"^-?\d+\.\d{2}$"}

# Money as two v1 schemas were published before MONEY existed. A published version is frozen
# (tests/contract), so these stay for those versions only; their next version uses MONEY.
MONEY_V1_UNSIGNED = {"type": "string", "pattern": r"^\d+(\.\d{1,2})?$"}  # catalog.product_* v1
MONEY_V1_LOOSE = {"type": "string", "pattern": r"^-?\d+(\.\d{1,2})?$"}  # the retired authorization command v1
