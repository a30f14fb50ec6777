"""Reviews: public list, one review per signed-in user and product, rating summary."""

import uuid
from decimal import Decimal

import pytest

from apps.catalog import facade
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import UserFactory
from tests.factories.catalog import ProductFactory, ReviewFactory
from tests.support.queries import assert_max_queries

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


def url(product_id) -> str:
    return f"/api/v1/products/{product_id}/reviews"


@pytest.fixture
def product():
    return ProductFactory()


@pytest.fixture
def customer(api_client):
    user = UserFactory()
    api_client.force_authenticate(user)
    return user


def test_signed_in_customer_reviews_once(api_client, product, customer):
    response = api_client.post(url(product.id), {"rating": 5, "text": "<i>Lovely</i> kettle"}, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()["data"]
    assert (data["rating"], data["text"], data["userId"]) == (5, "Lovely kettle", str(customer.id))

    again = api_client.post(url(product.id), {"rating": 1}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "REVIEW_EXISTS"


def test_reviewing_needs_login_a_valid_rating_and_an_active_product(api_client, product):
    assert api_client.post(url(product.id), {"rating": 5}, format="json").status_code == 401
    api_client.force_authenticate(UserFactory())
    for rating in (0, 6, "five", None):
        assert api_client.post(url(product.id), {"rating": rating}, format="json").status_code == 400
    hidden = ProductFactory(is_active=False)
    assert api_client.post(url(hidden.id), {"rating": 5}, format="json").status_code == 404
    assert api_client.post(url(uuid.uuid4()), {"rating": 5}, format="json").status_code == 404


@pytest.mark.parametrize("count", [3, 30])
def test_list_is_paginated_newest_first_in_constant_queries(api_client, product, count):
    ReviewFactory.create_batch(count, product=product)
    newest = ReviewFactory(product=product, text="newest")
    api_client.get(f"/api/v1/products/{product.id}")  # product cached, as on a product page
    with assert_max_queries(2):  # count + page
        body = api_client.get(url(product.id), {"limit": 50}).json()
    assert body["pagination"]["total"] == count + 1
    assert body["data"][0]["id"] == str(newest.id)


def test_list_rejects_unknown_parameters(api_client, product):
    assert api_client.get(url(product.id), {"sortBy": "rating"}).status_code == 400


def test_rating_summary(product):
    assert facade.rating_summary_get(product_id=product.id) == facade.RatingSummary(average=None, count=0)
    for rating in (5, 4, 4):
        ReviewFactory(product=product, rating=rating)
    assert facade.rating_summary_get(product_id=product.id) == facade.RatingSummary(average=Decimal("4.33"), count=3)


def test_product_snapshots_for_other_contexts(product):
    hidden = ProductFactory(is_active=False, price=Decimal("3.50"))
    with assert_max_queries(1):
        snapshots = facade.product_snapshots_get(product_ids=[product.id, hidden.id, uuid.uuid4()])
    assert set(snapshots) == {product.id, hidden.id}
    assert snapshots[hidden.id] == facade.ProductSnapshot(
        id=hidden.id, sku=hidden.sku, name=hidden.name, price=Decimal("3.50"), currency="USD", is_active=False
    )
    assert facade.product_get(product_id=product.id) == snapshots[product.id]
    assert facade.product_get(product_id=uuid.uuid4()) is None
