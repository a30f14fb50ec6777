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


def test_ready_reports_redis_down_and_stays_ready_since_every_replica_shares_it(client, settings):
    """Redis is shared by every replica: failing readiness on it took them all out of the load balancer
    at once, while the API works without it (the cache falls back to the database)."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["redis"]["status"] == "down"
    assert body["checks"]["database:orders"]["status"] == "ok"


def test_ready_answers_within_its_timeout_when_a_database_never_answers(client, settings):
    """A database that accepts the connection and never answers (a hung server, a black-holed
    route): the verdict does not wait for it. One after the other, each database waited for the
    pool's timeout, and with PostgreSQL down a probe outlived gunicorn's 30 s and its worker."""
    import socket

    from django.db import connections

    settings.HEALTH_READY_TIMEOUT_SECONDS = 1
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections complete in the kernel; nobody ever answers them
    conn = connections["payments"]
    original = conn.settings_dict["PORT"]
    conn.close()
    conn.settings_dict["PORT"] = silent.getsockname()[1]
    try:
        response = client.get("/health/ready")
    finally:
        conn.settings_dict["PORT"] = original
        silent.close()  # the probe still waiting in its thread gets a reset and ends
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database:payments"] == {"status": "down", "error": "no answer within 1 s"}
    assert checks["database:orders"]["status"] == "ok"


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


def test_a_workers_readiness_is_down_when_its_broker_is_unreachable_and_webs_stays_up(client, settings):
    """A worker can do nothing without its broker: its ops port answers 503 (compose's health check).
    Web, which serves without it (the outbox keeps events owed), stays ready and reports it."""
    import json

    from shop.observability.ops_server import make_app

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    answered = {}

    def start_response(status, headers):
        answered["status"] = status

    body = b"".join(make_app(include_shared_state=False)({"PATH_INFO": "/health/ready"}, start_response))

    assert answered["status"].startswith("503")
    assert json.loads(body)["checks"]["broker"]["status"] == "down"
    web = client.get("/health/ready")
    assert web.status_code == 200 and web.json()["checks"]["broker"]["status"] == "down"
