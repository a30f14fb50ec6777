"""Issue #12, finding 6: operational endpoints as an attacker on the public internet sees them."""

import time
import uuid

import pytest

from shop.health import checks
from tests.conftest import CONTEXT_DBS

pytestmark = [pytest.mark.django_db(databases=CONTEXT_DBS), pytest.mark.usefixtures("fresh_readiness")]

OUTSIDER = "203.0.113.7"  # TEST-NET-3: not in OPS_ALLOWED_NETWORKS


def test_metrics_is_not_found_for_a_client_outside_the_ops_networks_even_with_a_forged_forwarded_for(client):
    response = client.get("/metrics", REMOTE_ADDR=OUTSIDER, HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert response.status_code == 404
    assert b"http_requests_total" not in response.content
    assert client.get("/metrics").status_code == 200  # from 127.0.0.1, an operator


def test_public_readiness_during_an_outage_says_only_down_with_no_exception_text(client, settings):
    from django.db import connections

    settings.REDIS_URL = "redis://secret-user:hunter2@127.0.0.1:1/0"
    conn = connections["payments"]
    original = conn.settings_dict["PORT"]
    conn.close()
    conn.settings_dict["PORT"] = 1
    try:
        response = client.get("/health/ready", REMOTE_ADDR=OUTSIDER)
        checks.forget()
        detailed = client.get("/health/ready")  # an operator still sees which dependency failed
    finally:
        conn.close()
        conn.settings_dict["PORT"] = original
    assert response.status_code == 503
    assert response.json() == {"status": "down"}
    assert "hunter2" not in response.content.decode()
    assert detailed.json()["checks"]["redis"]["status"] == "down"
    assert detailed.json()["checks"]["database:payments"]["status"] == "down"


def test_readiness_calls_within_the_cache_period_probe_nothing(client, monkeypatch):
    """One round of probes per period, however many calls (probes run in threads of their own, so
    they are counted where they start)."""
    rounds = []
    probe_all = checks._probe_all
    monkeypatch.setattr(checks, "_probe_all", lambda: rounds.append(1) or probe_all())

    for _ in range(20):
        assert client.get("/health/ready", REMOTE_ADDR=OUTSIDER).json() == {"status": "ok"}

    assert len(rounds) == 1


def test_a_verdict_that_took_its_deadline_is_reused_for_the_cache_period(client, settings, monkeypatch):
    """Stamped before the probes ran, a verdict that took longer than the cache period was stale when
    stored: during a database hang every call waited the full deadline, enough to fill gunicorn's
    sync workers."""
    settings.HEALTH_READY_CACHE_SECONDS = 2
    rounds = []
    probe_all = checks._probe_all

    def slow_round():
        rounds.append(1)
        time.sleep(2.1)  # the deadline a hung database costs, longer than the cache period
        return probe_all()

    monkeypatch.setattr(checks, "_probe_all", slow_round)
    client.get("/health/ready", REMOTE_ADDR=OUTSIDER)
    client.get("/health/ready", REMOTE_ADDR=OUTSIDER)

    assert len(rounds) == 1


def test_made_up_http_methods_and_raw_paths_do_not_grow_the_metric_labels(client):
    for i in range(25):
        client.generic(f"BOGUS{i}", "/api/v1/orders", REMOTE_ADDR=OUTSIDER)
    raw_id = str(uuid.uuid4())
    client.get(f"/api/v1/orders/{raw_id}", REMOTE_ADDR=OUTSIDER)
    client.get(f"/no-such-page-{raw_id}", REMOTE_ADDR=OUTSIDER)
    text = client.get("/metrics").content.decode()
    assert "BOGUS" not in text
    assert raw_id not in text
    assert 'method="other",route="api/<str:version>/orders"' in text
    assert 'route="unmatched"' in text
