"""Anonymous GETs of public reads are replayed from their rendered bytes (shop/api/responsecache.py):
the same status, headers and body as the view's, without the view, and never for anyone else."""

import pytest
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from tests.conftest import CONTEXT_DBS
from tests.factories.catalog import ProductFactory
from tests.factories.inventory import StockItemFactory
from tests.support.queries import assert_max_queries

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)

PER_REQUEST = {"X-Correlation-ID", "RateLimit", "RateLimit-Policy"}  # set by middleware for each request


def _hits(name: str) -> float:
    return REGISTRY.get_sample_value("cache_requests_total", {"cache": name, "result": "hit"}) or 0.0


def _shape(response) -> tuple:
    """Status, every header in order (the per-request ones by name only) and the body."""
    headers = [(k, "<per request>" if k in PER_REQUEST else v) for k, v in response.headers.items()]
    return response.status_code, headers, response.content


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("product_http", "/api/v1/products/{id}"),
        ("product_list_http", "/api/v1/products?limit=5&sortBy=price"),
        ("bff_page_http", "/api/v1/bff/products/{id}/complete"),
    ],
)
def test_a_hit_replays_what_the_view_answered_without_running_it(name, path):
    product = ProductFactory()
    StockItemFactory(product_id=product.id, on_hand=3)
    url = path.format(id=product.id)
    first = APIClient().get(url)
    hits = _hits(name)
    with assert_max_queries(0):
        again = APIClient().get(url)
    assert _hits(name) == hits + 1
    assert _shape(again) == _shape(first)
    # The middleware still ran for the hit: its own correlation id, the rate limit counted it, the
    # security headers and the policy are those of the miss (compared above, values included).
    assert again["X-Correlation-ID"] != first["X-Correlation-ID"]
    assert again["RateLimit"] != first["RateLimit"] and again["RateLimit-Policy"] == first["RateLimit-Policy"]
    assert {"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"} <= set(
        again.headers
    )


def test_unknown_query_parameters_still_reach_the_view_and_its_400():
    product = ProductFactory()
    APIClient().get(f"/api/v1/products/{product.id}")
    response = APIClient().get(f"/api/v1/products/{product.id}", {"expand": "all"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_requests_with_credentials_never_read_or_fill_the_public_copy(staff_client):
    hidden = ProductFactory(is_active=False)
    assert APIClient().get(f"/api/v1/products/{hidden.id}").status_code == 404
    assert staff_client.get(f"/api/v1/products/{hidden.id}").status_code == 200  # staff see inactive ones
    assert APIClient().get(f"/api/v1/products/{hidden.id}").status_code == 404  # and nobody else, after


def test_a_process_local_copy_answers_without_redis_and_this_process_invalidations_drop_it(settings):
    from django.core.cache import cache as redis_cache

    from apps.catalog import caching

    settings.LOCAL_CACHE_SECONDS = 60
    product = ProductFactory()
    url = f"/api/v1/products/{product.id}"
    APIClient().get(url)  # miss: the view runs, the response is stored in Redis
    APIClient().get(url)  # Redis hit, now also copied into this process
    redis_cache.delete_many([caching.product_key(product.id), f"{caching.product_key(product.id)}:http:v1"])
    with assert_max_queries(0):  # neither Redis entry exists: only the local copy can answer
        assert APIClient().get(url).status_code == 200
    caching.invalidate_product(product.id)
    with assert_max_queries(1):  # dropped here too: the view reads the product again
        assert APIClient().get(url).status_code == 200


def test_a_copy_written_back_after_an_edits_deletes_is_deleted_once_more_after_the_requests_time_limit(settings):
    """A reader that read the product before an edit committed and wrote its copy back after both the
    commit's delete and the event's kept an old price on show for the detail's TTL (a day). The event's
    handler now also schedules a late delete past any request's time limit: the broker holds it with
    that countdown, and when it runs, the late copy goes."""
    import base64
    import json
    from decimal import Decimal

    import redis
    from django.core.cache import cache as redis_cache

    from apps.catalog import caching, services, tasks
    from shop.events import inbox
    from shop.events.store import outbox_model

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("celery")
    product = ProductFactory(price=Decimal("10.00"))
    url = f"/api/v1/products/{product.id}"
    assert APIClient().get(url).json()["data"]["price"] == "10.00"
    stale = {
        key: redis_cache.get(key)
        for key in (caching.product_key(product.id), f"{caching.product_key(product.id)}:http:v1")
    }
    services.product_update(product_id=product.id, data={"price": Decimal("12.00")})
    update = outbox_model("catalog").objects.filter(aggregate_id=str(product.id)).latest("created_at")

    assert inbox.handle("catalog.invalidate_cache_on_update", update.envelope) is True
    [message] = [json.loads(raw) for raw in broker.lrange("celery", 0, -1)]
    assert message["headers"]["task"] == "catalog.invalidate_product_again"
    assert json.loads(base64.b64decode(message["body"]))[0] == [str(product.id)]
    eta = message["headers"]["eta"]
    assert eta is not None and settings.CATALOG_LATE_INVALIDATION_SECONDS >= 30

    redis_cache.set_many(stale)  # the slow reader's copies, written back after both deletes
    settings.LOCAL_CACHE_SECONDS = 0
    assert APIClient().get(url).json()["data"]["price"] == "10.00"  # what it left on show
    tasks.invalidate_product_again(str(product.id))  # what the worker runs at the countdown's end
    assert APIClient().get(url).json()["data"]["price"] == "12.00"
    broker.delete("celery")
