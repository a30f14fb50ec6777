"""Domain errors of the inventory context (mapped to the API envelope by ``shop.api.exceptions``;
the facade re-exports those other contexts may meet)."""

from http import HTTPStatus

from shop.errors import DomainError


class InventoryError(DomainError):
    pass


class StockItemNotFound(InventoryError):
    code = "STOCK_NOT_FOUND"
    http_status = HTTPStatus.NOT_FOUND
    public_message = "No stock is tracked for this product."


class AdjustmentAlreadyMade(InventoryError):
    """The same one-time key again (a form submitted twice): the first submission made it."""

    code = "ADJUSTMENT_ALREADY_MADE"
    http_status = HTTPStatus.CONFLICT
    public_message = "Already done by this form's first submission."

    def __str__(self) -> str:
        return self.public_message


class AdjustmentBelowReserved(InventoryError):
    code = "STOCK_BELOW_RESERVED"
    http_status = HTTPStatus.CONFLICT
    public_message = "On hand cannot go below the units reserved for open orders."

    def __init__(self, *, product_id, on_hand: int, reserved: int, delta: int):
        super().__init__(f"on hand {on_hand} {delta:+d} would fall below the {reserved} reserved units")
        self.product_id, self.on_hand, self.reserved, self.delta = product_id, on_hand, reserved, delta

    def details(self) -> dict:
        return {
            "productId": str(self.product_id),
            "onHand": self.on_hand,
            "reserved": self.reserved,
            "delta": self.delta,
        }


class ReservationNotActive(InventoryError):
    """``commit`` found nothing reservable to commit: the order's reservation expired, was
    released, or never succeeded. Committing nothing silently would let stock be sold twice."""

    code = "RESERVATION_NOT_ACTIVE"
    http_status = HTTPStatus.CONFLICT


class ExpiredReservationUnfillable(ReservationNotActive):
    """A confirmed order's reservation expired and its units were sold meanwhile: it cannot be
    fulfilled from stock, which staff must see (the money was taken)."""

    code = "RESERVATION_EXPIRED_UNFILLABLE"
