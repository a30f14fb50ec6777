"""Reservations: all-or-nothing, idempotent per order, ledgered, expiring."""

import uuid
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from apps.inventory import facade, services, tasks
from apps.inventory.events import RESERVATION_EXPIRED, STOCK_LOW
from apps.inventory.models import Reservation, StockItem, StockMovement
from apps.inventory.services import ALIAS
from shop.events.store import outbox_model
from tests.conftest import CONTEXT_DBS
from tests.factories.inventory import StockItemFactory
from tests.support.events import watching

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)

Line = facade.StockLine


def stock(product_id) -> StockItem:
    return StockItem.objects.get(product_id=product_id)


def assert_ledger_balanced(*product_ids):
    for pid in product_ids:
        item = stock(pid)
        sums = StockMovement.objects.filter(product_id=pid).aggregate(
            on_hand=Sum("on_hand_delta"), reserved=Sum("reserved_delta")
        )
        assert (sums["on_hand"], sums["reserved"] or 0) == (item.on_hand, item.reserved), pid


@pytest.fixture(autouse=True)
def _watched():
    """Nothing consumes stock.low or reservation.expired yet: watched here, each publish is
    queued in the outbox, where ``events_of`` reads it."""
    with watching(STOCK_LOW, RESERVATION_EXPIRED, context=ALIAS):
        yield


def events_of(event_type) -> list[dict]:
    rows = outbox_model(ALIAS).objects.filter(event_type=event_type).order_by("created_at")
    return [row.envelope["data"] for row in rows]


def test_reserve_takes_every_line_and_records_it():
    a, b = StockItemFactory(on_hand=10), StockItemFactory(on_hand=3)
    order = uuid.uuid4()
    outcome = facade.stock_reserve(order_id=order, items=[Line(a.product_id, 4), Line(b.product_id, 3)])
    assert outcome == facade.ReservationOutcome(order_id=order, reserved=True, shortages=())
    assert facade.stock_availability(product_ids=[a.product_id, b.product_id]) == {a.product_id: 6, b.product_id: 0}
    reservations = Reservation.objects.filter(order_id=order)
    assert {(r.product_id, r.quantity, r.status) for r in reservations} == {
        (a.product_id, 4, "RESERVED"),
        (b.product_id, 3, "RESERVED"),
    }
    ttl = timedelta(minutes=15)
    assert all(abs(r.expires_at - (timezone.now() + ttl)) < timedelta(minutes=1) for r in reservations)
    assert_ledger_balanced(a.product_id, b.product_id)


def test_reserve_is_all_or_nothing_and_reports_shortages():
    a, b = StockItemFactory(on_hand=10), StockItemFactory(on_hand=2)
    unknown = uuid.uuid4()
    outcome = facade.stock_reserve(
        order_id=uuid.uuid4(), items=[Line(a.product_id, 5), Line(b.product_id, 3), Line(unknown, 1)]
    )
    assert outcome.reserved is False
    assert set(outcome.shortages) == {
        facade.Shortage(product_id=b.product_id, available=2, requested=3),
        facade.Shortage(product_id=unknown, available=0, requested=1),
    }
    assert (stock(a.product_id).reserved, stock(b.product_id).reserved) == (0, 0)
    assert not Reservation.objects.exists()


def test_repeated_lines_of_one_product_are_summed():
    a = StockItemFactory(on_hand=5)
    outcome = facade.stock_reserve(order_id=uuid.uuid4(), items=[Line(a.product_id, 3), Line(a.product_id, 3)])
    assert outcome.shortages == (facade.Shortage(product_id=a.product_id, available=5, requested=6),)


def test_a_repeat_returns_the_first_outcome_and_reserves_nothing_more():
    a = StockItemFactory(on_hand=10)
    order = uuid.uuid4()
    first = facade.stock_reserve(order_id=order, items=[Line(a.product_id, 4)])
    again = facade.stock_reserve(order_id=order, items=[Line(a.product_id, 4)])
    assert again == first and first.reserved
    assert stock(a.product_id).reserved == 4

    short_order = uuid.uuid4()
    refused = facade.stock_reserve(order_id=short_order, items=[Line(a.product_id, 50)])
    services.stock_adjust(product_id=a.product_id, delta=100, reason="delivery")
    assert facade.stock_reserve(order_id=short_order, items=[Line(a.product_id, 50)]) == refused


@pytest.mark.parametrize("items", [[], [Line(uuid.uuid4(), 0)], [Line(uuid.uuid4(), -1)]])
def test_empty_orders_and_non_positive_quantities_are_refused(items):
    with pytest.raises(ValueError):
        facade.stock_reserve(order_id=uuid.uuid4(), items=items)


def test_release_returns_units_and_is_idempotent():
    a = StockItemFactory(on_hand=10)
    order = uuid.uuid4()
    facade.stock_reserve(order_id=order, items=[Line(a.product_id, 4)])
    facade.stock_release(order_id=order)
    facade.stock_release(order_id=order)
    facade.stock_release(order_id=uuid.uuid4())  # nothing reserved: a no-op
    item = stock(a.product_id)
    assert (item.on_hand, item.reserved) == (10, 0)
    assert Reservation.objects.get(order_id=order).status == "RELEASED"
    assert_ledger_balanced(a.product_id)


def test_commit_takes_units_off_the_shelf_once():
    a = StockItemFactory(on_hand=10)
    order = uuid.uuid4()
    facade.stock_reserve(order_id=order, items=[Line(a.product_id, 4)])
    facade.stock_commit(order_id=order)
    facade.stock_commit(order_id=order)
    facade.stock_release(order_id=order)  # committed units are not released
    item = stock(a.product_id)
    assert (item.on_hand, item.reserved) == (6, 0)
    assert Reservation.objects.get(order_id=order).status == "COMMITTED"
    assert_ledger_balanced(a.product_id)


def test_return_committed_puts_units_back_once():
    a = StockItemFactory(on_hand=10)
    order = uuid.uuid4()
    facade.stock_reserve(order_id=order, items=[Line(a.product_id, 4)])
    facade.stock_commit(order_id=order)
    facade.stock_return_committed(order_id=order)
    facade.stock_return_committed(order_id=order)
    facade.stock_commit(order_id=order)  # already settled: still a no-op
    item = stock(a.product_id)
    assert (item.on_hand, item.reserved) == (10, 0)
    assert Reservation.objects.get(order_id=order).status == "RETURNED"
    assert_ledger_balanced(a.product_id)


def test_commit_after_release_or_without_reservation_raises():
    a = StockItemFactory(on_hand=10)
    order = uuid.uuid4()
    facade.stock_reserve(order_id=order, items=[Line(a.product_id, 4)])
    facade.stock_release(order_id=order)
    with pytest.raises(facade.ReservationNotActive):
        facade.stock_commit(order_id=order)
    with pytest.raises(facade.ReservationNotActive):
        facade.stock_commit(order_id=uuid.uuid4())
    assert stock(a.product_id).on_hand == 10


def test_expiry_task_releases_overdue_reservations_only():
    a = StockItemFactory(on_hand=10)
    overdue, fresh, committed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for order in (overdue, fresh, committed):
        facade.stock_reserve(order_id=order, items=[Line(a.product_id, 2)])
    facade.stock_commit(order_id=committed)
    Reservation.objects.filter(order_id__in=[overdue, committed]).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    assert tasks.expire_reservations.apply().get() == 1
    assert tasks.expire_reservations.apply().get() == 0

    assert Reservation.objects.get(order_id=overdue).status == "EXPIRED"
    assert Reservation.objects.get(order_id=fresh).status == "RESERVED"
    item = stock(a.product_id)
    assert (item.on_hand, item.reserved) == (8, 2)
    assert events_of("inventory.reservation_expired") == [{"orderId": str(overdue), "productIds": [str(a.product_id)]}]
    # A confirmation that arrives after expiry re-takes the units (the customer has paid).
    facade.stock_commit(order_id=overdue)
    assert Reservation.objects.get(order_id=overdue).status == "COMMITTED"
    item = stock(a.product_id)
    assert (item.on_hand, item.reserved) == (6, 2)
    assert_ledger_balanced(a.product_id)


def test_expiry_task_is_on_the_beat_schedule(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["inventory-expire-reservations"]
    assert entry["task"] == tasks.expire_reservations.name


def test_expiry_works_through_batches():
    a = StockItemFactory(on_hand=10)
    orders = [uuid.uuid4() for _ in range(3)]
    for order in orders:
        facade.stock_reserve(order_id=order, items=[Line(a.product_id, 1)])
    Reservation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.reservations_expire_due(limit=2) == 2
    assert services.reservations_expire_due(limit=2) == 1
    assert stock(a.product_id).reserved == 0


def test_low_stock_is_announced_once_when_available_crosses_the_threshold(settings):
    settings.INVENTORY_LOW_STOCK_THRESHOLD = 5
    a = StockItemFactory(on_hand=8)
    facade.stock_reserve(order_id=uuid.uuid4(), items=[Line(a.product_id, 2)])  # 6 left: above
    facade.stock_reserve(order_id=uuid.uuid4(), items=[Line(a.product_id, 2)])  # 4 left: crossed
    facade.stock_reserve(order_id=uuid.uuid4(), items=[Line(a.product_id, 1)])  # 3 left: still low, no repeat
    assert events_of("inventory.stock_low") == [{"productId": str(a.product_id), "available": 4, "threshold": 5}]
