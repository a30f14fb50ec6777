"""The warehouse's "Adjust stock" page: a delta beyond what the column holds is a form error."""

from decimal import Decimal

import pytest

from apps.inventory.models import StockItem
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
