"""Finding 8: small holes at the edge (deep JSON, stock of hidden products, pickled cache)."""

import pickle
import uuid

import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from apps.catalog import facade as catalog
from apps.catalog import services as catalog_services
from apps.catalog.caching import product_key
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import UserFactory
from tests.factories.inventory import StockItemFactory

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


@pytest.mark.parametrize("path", ["/api/v1/auth/token", "/api/v1/orders", "/api/v1/auth/register"])
def test_deeply_nested_json_is_400_not_500(api_client, path, caplog):
    api_client.force_authenticate(UserFactory())
    for body in ("[" * 50_000 + "]" * 50_000, '{"a":' * 40 + "1" + "}" * 40):
        response = api_client.post(path, body, content_type="application/json")
        assert response.status_code == 400, (path, response.status_code)
        assert response.json()["error"]["code"] == "MALFORMED_REQUEST"
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


def test_stock_of_a_deactivated_product_is_404_like_the_product(api_client, django_capture_on_commit_callbacks):
    product = catalog_services.product_create(sku="HIDE-1", name="Secret", price="9.00")
    StockItemFactory(product_id=product.id, on_hand=7)
    assert api_client.get(f"/api/v1/inventory/{product.id}").status_code == 200

    with django_capture_on_commit_callbacks(using="catalog", execute=True):  # cache invalidation
        catalog_services.product_deactivate(product_id=product.id)
    assert api_client.get(f"/api/v1/products/{product.id}").status_code == 404
    response = api_client.get(f"/api/v1/inventory/{product.id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "STOCK_NOT_FOUND"


class _Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickle payload ran')",))


def test_a_pickle_planted_in_redis_is_never_unpickled():
    """With write access to Redis an attacker plants a pickle under a cache key the app reads."""
    product = catalog_services.product_create(sku="PKL-1", name="Mug", price="3.00")
    key = cache.make_key(product_key(product.id))
    redis.Redis.from_url(settings.REDIS_URL).set(key, pickle.dumps(_Boom()))

    try:
        detail = catalog.product_detail_get(product_id=product.id)  # JSON can't decode it: a miss
    except SystemExit as ran:  # pragma: no cover - the failure this test exists for
        pytest.fail(f"the cache unpickled attacker data: {ran}")
    except ValueError:
        detail = None  # refused to decode: harmless too
    assert detail is None or detail.id == product.id


def test_cached_values_are_stored_as_json():
    product = catalog_services.product_create(sku="JSN-1", name="Mug", price="3.50")
    first = catalog.product_detail_get(product_id=product.id)
    raw = redis.Redis.from_url(settings.REDIS_URL).get(cache.make_key(product_key(product.id)))
    assert raw is not None and raw.lstrip().startswith(b"[")  # a JSON array, not a pickle (0x80)
    assert catalog.product_detail_get(product_id=product.id) == first
    assert first.price == catalog.product_get(product_id=product.id).price
    assert isinstance(first.id, uuid.UUID)
