"""Domain errors of the orders context (mapped to the API envelope by ``shop.api.exceptions``)."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus

from shop.errors import DomainError


class OrderError(DomainError):
    """A business rule refused the command."""

    code = "ORDER_REJECTED"


class OrderNotFound(OrderError):
    code = "ORDER_NOT_FOUND"
    http_status = HTTPStatus.NOT_FOUND
    public_message = "Order not found."


class ProductsUnavailable(OrderError):
    code = "PRODUCT_UNAVAILABLE"

    def __init__(self, product_ids: Sequence[uuid.UUID]):
        super().__init__(f"Products not available: {', '.join(map(str, product_ids))}")
        self.product_ids = list(product_ids)

    def details(self) -> dict:
        return {"productIds": self.product_ids}


class MixedCurrencies(OrderError):
    pass


@dataclass(frozen=True)
class Shortage:
    product_id: uuid.UUID
    available: int
    requested: int


class InsufficientStock(OrderError):
    code = "INSUFFICIENT_STOCK"
    http_status = HTTPStatus.CONFLICT
    public_message = "Product out of stock."

    def __init__(self, shortages: Sequence[Shortage]):
        super().__init__("Insufficient stock")
        self.shortages = list(shortages)

    def details(self) -> dict:
        shortages = [
            {"productId": s.product_id, "available": s.available, "requested": s.requested} for s in self.shortages
        ]
        # The spec's shape names the first short product; ``shortages`` lists all of them.
        return {**shortages[0], "shortages": shortages}


class ConcurrentChange(OrderError):
    """Another writer appended to the order's event stream first; retry the command."""

    code = "CONCURRENT_MODIFICATION"
    http_status = HTTPStatus.CONFLICT


class InvalidTransition(OrderError):
    code = "INVALID_STATE"
    http_status = HTTPStatus.CONFLICT

    def __init__(self, order, target: str, why: str = ""):
        super().__init__(f"Order {order.id} is {order.status}; it cannot become {target}{why}")
        self.current = order.status
        self.target = target

    def details(self) -> dict:
        return {"status": self.current, "target": self.target}


class NothingToReplay(OrderError, LookupError):
    """No event of this order at (or before) the requested moment."""

    code = "NO_EVENTS_AT"
    http_status = HTTPStatus.NOT_FOUND

    def __init__(self, order_id, until=None):
        super().__init__(f"Order {order_id} has no events" + (f" at or before {until}" if until else ""))
        self.until = until

    def details(self) -> dict:
        return {"at": self.until.isoformat() if self.until else None}


class CheckoutBusy(OrderError):
    """Admission control: more work waits for the workers than they finish in a few seconds.

    Accepting more would only lengthen the queue every checkout waits in, until steps pass
    their deadlines and the recovery's re-sends add work just when there is least room for it.
    A client told to come back in a second or two is served sooner than one queued for a minute."""

    code = "CHECKOUT_BUSY"
    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    public_message = "The shop is taking more orders than it can check out right now; retry shortly."
    retry_after = 2

    def __init__(self, waiting: int, limit: int):
        super().__init__(f"{waiting} messages wait for a worker (limit {limit})")
        self.waiting = waiting
        self.limit = limit
