"""The catalog's events through a real Celery worker (committed transactions, real queues)."""

import uuid

import pytest

from apps.catalog.models import InboxMessage
from apps.inventory.models import StockItem
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import UserFactory
from tests.support.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)]


def test_new_product_gets_stock_and_a_staff_price_change_reaches_the_next_read(celery_worker, api_client):
    staff = type(api_client)()
    staff.force_authenticate(UserFactory(staff=True))
    created = staff.post("/api/v1/products", {"sku": "W-1", "name": "Lamp", "price": "30.00"}, format="json")
    product_id = uuid.UUID(created.json()["data"]["id"])

    wait_until(lambda: StockItem.objects.filter(product_id=product_id).exists(), message="stock item by the worker")

    assert api_client.get(f"/api/v1/products/{product_id}").json()["data"]["price"] == "30.00"  # now cached
    assert staff.patch(f"/api/v1/products/{product_id}", {"price": "35.00"}, format="json").status_code == 200
    assert api_client.get(f"/api/v1/products/{product_id}").json()["data"]["price"] == "35.00"

    wait_until(
        lambda: InboxMessage.objects.filter(consumer="catalog.invalidate_cache_on_update").exists(),
        message="the product_updated invalidation handled by the worker",
    )
    assert api_client.get(f"/api/v1/products/{product_id}").json()["data"]["price"] == "35.00"
