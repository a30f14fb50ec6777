"""The warehouse's "Adjust stock" page: a delta beyond what the column holds is a form error, and a
form submitted twice adjusts once."""

from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry

from apps.inventory.models import StockItem, StockMovement
from tests.conftest import CONTEXT_DBS
from tests.factories.orders import stocked_products

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


@pytest.mark.parametrize("delta", ["3000000000", "-3000000000", "1000001"])
def test_an_adjustment_beyond_the_apis_bound_is_a_form_error_not_a_500(admin_browser, delta):
    """The API bounds a delta at ±1,000,000; the admin's form had no bound, and 3,000,000,000
    overflowed the integer column: a 500 page (the transaction rolled back)."""
    [product] = stocked_products(1, price=Decimal("5.00"), on_hand=10)
    item = StockItem.objects.get(product_id=product.id)

    response = admin_browser.post(
        f"/admin/inventory/stockitem/{item.pk}/act/adjust/", {"delta": delta, "reason": "count"}
    )

    assert response.status_code == 200
    assert "delta" in response.context["form"].errors
    item.refresh_from_db()
    assert item.on_hand == 10


def test_an_adjust_stock_form_submitted_twice_adjusts_once(admin_browser):
    """A double-click on "Adjust stock" sent the form twice, and a delivery of 40 units was booked as
    80. The form carries one key per form shown, which the adjustment claims."""
    [product] = stocked_products(1, price=Decimal("5.00"), on_hand=10)
    item = StockItem.objects.get(product_id=product.id)
    action = f"/admin/inventory/stockitem/{item.pk}/act/adjust/"
    once = admin_browser.get(action).context["form"]["once"].value()
    data = {"delta": "40", "reason": "delivery 44", "once": once}

    first = admin_browser.post(action, data)
    second = admin_browser.post(action, data)

    assert (first.status_code, second.status_code) == (302, 200)
    assert second.context["form"].non_field_errors() == ["Already done by this form's first submission."]
    item.refresh_from_db()
    assert item.on_hand == 50
    assert StockMovement.objects.filter(product_id=product.id, reason="ADJUSTMENT").count() == 1
    assert LogEntry.objects.filter(object_id=str(item.pk), change_message__startswith="Adjust stock").count() == 1
    other = admin_browser.post(action, {**data, "delta": "41"})
    assert other.status_code == 200 and other.context["form"].non_field_errors()
