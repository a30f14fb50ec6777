"""Warehouse, catalog and operations staff at work, in headless Chromium."""

from decimal import Decimal

import pytest
from django.db import transaction
from django.test import Client
from rest_framework.test import APIClient

from apps.catalog.models import Category, Product
from apps.inventory.models import StockItem, StockMovement
from apps.orders.models import DeadLetter
from shop.events import inbox, publish
from tests.conftest import CONTEXT_DBS
from tests.factories.catalog import ProductFactory
from tests.factories.orders import stocked_products
from tests.support.eventprobe import control
from tests.support.eventprobe.events import PINGED
from tests.support.eventprobe.handlers import PINGED_CONSUMER

pytestmark = pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)


def _confirm(browser, action: str, **fields) -> None:
    browser.click(action)
    browser.fill(fields)
    browser.submit(f"Confirm: {action}")


def test_warehouse_finds_low_stock_and_adjusts_it_with_a_reason(staff_browser, staff_member):
    (low,) = stocked_products(1, on_hand=3, name="Garden hose")
    stocked_products(1, on_hand=50, name="Watering can")
    warehouse = staff_member("warehouse")

    staff_browser.sign_in(warehouse.email)
    staff_browser.open("/admin/inventory/stockitem/")
    staff_browser.click("low (available ≤ 5)")
    assert "Garden hose" in staff_browser.text and "Watering can" not in staff_browser.text
    staff_browser.click("Garden hose")
    assert "INITIAL" in staff_browser.text_of("#stock-movements")

    _confirm(staff_browser, "Adjust stock", delta="20", reason="delivery note 4711")
    assert staff_browser.messages() == ["Adjust stock: +20 units; now 23 on hand, 23 available."]
    assert "ADJUSTMENT +20 +0 warehouse@shop.example delivery note 4711" in staff_browser.rows("#stock-movements")[0]

    _confirm(staff_browser, "Adjust stock", delta="-30", reason="count")  # refused: below zero
    assert "would fall below" in staff_browser.text_of(".errornote")

    item = StockItem.objects.get(product_id=low.id)
    assert (item.on_hand, item.reserved) == (23, 0)
    movement = StockMovement.objects.get(product_id=low.id, reason=StockMovement.Reason.ADJUSTMENT)
    assert (movement.on_hand_delta, movement.note, movement.reference) == (20, "delivery note 4711", warehouse.email)


def test_catalog_editor_changes_a_price_and_the_public_api_shows_it_at_once(staff_browser, staff_member):
    product = ProductFactory(name="Rain barrel", price=Decimal("40.00"))
    api = APIClient()
    assert api.get(f"/api/v1/products/{product.id}").json()["data"]["price"] == "40.00"  # now cached
    assert api.get("/api/v1/products?search=barrel").json()["data"][0]["price"] == "40.00"

    staff_browser.sign_in(staff_member("catalog").email)
    staff_browser.open("/admin/catalog/product/")
    staff_browser.search("barrel")
    staff_browser.click(product.sku)
    staff_browser.fill({"price": "34.50"})
    staff_browser.submit("Save")
    assert "was changed successfully" in staff_browser.messages()[0]

    assert api.get(f"/api/v1/products/{product.id}").json()["data"]["price"] == "34.50"
    assert api.get("/api/v1/products?search=barrel").json()["data"][0]["price"] == "34.50"

    staff_browser.open("/admin/catalog/category/add/")
    staff_browser.fill({"name": "Garden"})  # the slug is filled in by the admin's script
    staff_browser.submit("Save")
    assert Category.objects.get(name="Garden").slug == "garden"
    assert "Garden" in [c["name"] for c in api.get("/api/v1/categories").json()["data"]]


def test_a_support_user_cannot_edit_prices(staff_member):
    product = ProductFactory(price=Decimal("40.00"))
    client = Client()
    client.force_login(staff_member("support"))
    url = f"/admin/catalog/product/{product.id}/change/"
    body = {"sku": product.sku, "name": product.name, "price": "1.00", "currency": "USD", "is_active": "on"}

    assert client.post(url, body).status_code == 403
    assert Product.objects.get(pk=product.id).price == Decimal("40.00")


def _dead_letter(note: str) -> DeadLetter:
    with transaction.atomic(using="orders"):
        envelope = publish(PINGED, {"note": note, "tier": 2}, aggregate_id="ops-test", using="orders")
    inbox.dead_letter(PINGED_CONSUMER, envelope.to_wire(), RuntimeError("inventory database unreachable"), 5)
    return DeadLetter.objects.get(event_id=envelope.id)


def test_operations_shows_dead_letters_with_their_error_and_replays_them(staff_browser, staff_member):
    control.reset()
    first, second = _dead_letter("first"), _dead_letter("second")

    staff_browser.sign_in(staff_member("support").email)
    sidebar = staff_browser.text_of("#content-main")  # the index lists the sections
    assert "Outbox messages" not in sidebar and "Inbox messages" not in sidebar  # no per-context copies
    staff_browser.click("Dead letters and outbox")
    assert [row.split()[0] for row in staff_browser.rows("#outbox-lag")] == [
        "accounts", "catalog", "inventory", "orders", "payments",
    ]  # fmt: skip
    rows = staff_browser.rows("#dead-letters")
    assert len(rows) == 2 and all("RuntimeError: inventory database unreachable" in row for row in rows)

    control.set_mode(PINGED_CONSUMER, "always")  # still broken: the replay fails and says so
    staff_browser.check(f"orders:{first.pk}")
    staff_browser.submit("Replay selected")
    assert staff_browser.messages() == ["Replayed 0 dead letter(s); 1 failed again."]
    first.refresh_from_db()
    assert (first.status, first.attempts) == (DeadLetter.Status.FAILED, 6)

    control.set_mode(PINGED_CONSUMER, "ok")  # fixed: replay one, then the rest
    staff_browser.press(f"button[name=one][value='orders:{first.pk}']")
    assert staff_browser.messages() == ["Replayed 1 dead letter(s); 0 failed again."]
    assert str(first.event_id) not in staff_browser.page_source
    staff_browser.check(f"orders:{second.pk}")
    staff_browser.submit("Replay selected")
    assert staff_browser.messages() == ["Replayed 1 dead letter(s); 0 failed again."]
    assert staff_browser.text_of("#no-dead-letters") == "No failed dead letters."
    assert set(DeadLetter.objects.values_list("status", flat=True)) == {DeadLetter.Status.REPLAYED}
