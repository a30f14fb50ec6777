"""Domain events published by the catalog context (schemas are the contract; bump the version to change one)."""

from shop.events import register_event, schemas

PRODUCT_CREATED = "catalog.product_created"
PRODUCT_UPDATED = "catalog.product_updated"

_PRODUCT_FIELDS = {
    "productId": schemas.UUID,
    "sku": {"type": "string"},
    "name": {"type": "string"},
    "price": schemas.MONEY_V1_UNSIGNED,
    "currency": {"type": "string", "minLength": 3, "maxLength": 3},
    "isActive": {"type": "boolean"},
    "categoryId": {"anyOf": [schemas.UUID, {"type": "null"}]},
}

register_event(
    PRODUCT_CREATED,
    1,
    {
        "type": "object",
        "required": list(_PRODUCT_FIELDS),
        "properties": _PRODUCT_FIELDS,
    },
    description="A product was added to the catalog (inventory opens a stock item for it).",
)

register_event(
    PRODUCT_UPDATED,
    1,
    {
        "type": "object",
        "required": [*_PRODUCT_FIELDS, "changedFields"],
        "properties": {**_PRODUCT_FIELDS, "changedFields": {"type": "array", "items": {"type": "string"}}},
    },
    description="A product's data changed (price, name, active flag...); holders of copies refresh them.",
)
