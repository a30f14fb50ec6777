"""Redis going away mid-test: reads fall back to the database, nothing fails, and a stale
copy left behind is removed once the (retried) invalidation event gets through."""

from contextlib import contextmanager
from decimal import Decimal

import pytest

from shop import cache
from shop.events import inbox
from shop.events.store import outbox_model
from shop.observability.metrics import cache_requests
from shop.resilience import breaker
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import UserFactory
from tests.factories.catalog import ProductFactory

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens: the client sees what a stopped Redis looks like


@pytest.fixture
def redis(settings):
    """``with redis.down():`` points the cache at an unreachable Redis for the block."""

    class Switch:
        @contextmanager
        def down(self):
            original = settings.CACHES
            settings.CACHES = {"default": {**original["default"], "LOCATION": DEAD_REDIS}}
            try:
                yield
            finally:
                settings.CACHES = original
                breaker.reset_all()  # as if the breaker's reset timeout had elapsed

    yield Switch()
    breaker.reset_all()


def warned(caplog, event: str) -> bool:
    return any(isinstance(r.msg, dict) and r.msg.get("event") == event for r in caplog.records)


def test_reads_come_from_the_database_with_a_warning_when_redis_is_down(api_client, redis, caplog):
    product = ProductFactory(price=Decimal("10.00"))
    errors = cache_requests.labels("product", "error")._value.get()
    with redis.down():
        detail = api_client.get(f"/api/v1/products/{product.id}")
        listing = api_client.get("/api/v1/products")
        page = api_client.get(f"/api/v1/bff/products/{product.id}/complete")
    assert [r.status_code for r in (detail, listing, page)] == [200, 200, 200]
    assert detail.json()["data"]["price"] == "10.00"
    assert listing.json()["data"][0]["id"] == str(product.id)
    assert warned(caplog, "cache_unavailable")
    assert cache_requests.labels("product", "error")._value.get() - errors == 2  # detail + BFF


def test_the_breaker_stops_calling_a_dead_redis_and_requests_still_succeed(api_client, redis):
    product = ProductFactory()
    with redis.down():
        for _ in range(6):
            assert api_client.get(f"/api/v1/products/{product.id}").status_code == 200
        assert breaker.get_breaker(cache.BREAKER).current_state == "open"
        with pytest.raises(cache.CacheUnavailable, match="circuit open"):
            cache.invalidate("anything", strict=True)


def test_redis_stopped_mid_test_then_back(api_client, redis):
    product = ProductFactory(price=Decimal("10.00"))
    staff = type(api_client)()
    staff.force_authenticate(UserFactory(staff=True))
    assert api_client.get(f"/api/v1/products/{product.id}").json()["data"]["price"] == "10.00"  # cached

    with redis.down():
        assert staff.patch(f"/api/v1/products/{product.id}", {"price": "15.00"}, format="json").status_code == 200
        assert api_client.get(f"/api/v1/products/{product.id}").json()["data"]["price"] == "15.00"  # from the DB
        event = outbox_model("catalog").objects.get(event_type="catalog.product_updated").envelope
        with pytest.raises(cache.CacheUnavailable):  # the delivery fails, so Celery retries it later
            inbox.handle("catalog.invalidate_cache_on_update", event)

    # Redis is back with the old copy still in it, until the retried delivery succeeds.
    assert api_client.get(f"/api/v1/products/{product.id}").json()["data"]["price"] == "10.00"
    assert inbox.handle("catalog.invalidate_cache_on_update", event) is True
    assert api_client.get(f"/api/v1/products/{product.id}").json()["data"]["price"] == "15.00"
