"""Domain errors of the inventory context; the HTTP layer and the facade map or re-export them."""


class InventoryError(Exception):
    pass


class StockItemNotFound(InventoryError):
    pass


class AdjustmentBelowReserved(InventoryError):
    def __init__(self, *, on_hand: int, reserved: int, delta: int):
        super().__init__(f"on hand {on_hand} {delta:+d} would fall below the {reserved} reserved units")
        self.on_hand, self.reserved, self.delta = on_hand, reserved, delta


class ReservationNotActive(InventoryError):
    """``commit`` found nothing reservable to commit: the order's reservation expired, was
    released, or never succeeded. Committing nothing silently would let stock be sold twice."""


class ExpiredReservationUnfillable(ReservationNotActive):
    """A confirmed order's reservation expired and its units were sold meanwhile: it cannot be
    fulfilled from stock, which staff must see (the money was taken)."""
