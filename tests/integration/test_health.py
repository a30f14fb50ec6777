import pytest

from tests.conftest import CONTEXT_DBS
from tests.support.queries import assert_max_queries

pytestmark = [pytest.mark.django_db(databases=CONTEXT_DBS), pytest.mark.usefixtures("fresh_readiness")]


def test_live_touches_nothing(client):
    with assert_max_queries(0):
        response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json()["status"] == "alive"


def test_ready_checks_every_database_redis_and_broker(client):
    response = client.get("/health/ready")
    assert response.status_code == 200, response.json()
    checks = response.json()["checks"]
    assert {f"database:{a}" for a in CONTEXT_DBS} | {"redis", "broker"} == set(checks)
    assert all(check["status"] == "ok" for check in checks.values())


def test_ready_is_503_with_detail_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unready"
    assert body["checks"]["redis"]["status"] == "down"
    assert body["checks"]["database:orders"]["status"] == "ok"


def test_ready_is_503_when_a_database_is_unreachable(client, settings):
    from django.db import connections

    conn = connections["payments"]
    original = conn.settings_dict["PORT"]
    conn.close()
    conn.settings_dict["PORT"] = 1
    try:
        response = client.get("/health/ready")
    finally:
        conn.close()
        conn.settings_dict["PORT"] = original
    assert response.status_code == 503
    assert response.json()["checks"]["database:payments"]["status"] == "down"


def test_metrics_endpoint_exposes_prometheus_text(client):
    client.get("/health/live")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"http_requests_total" in response.content
