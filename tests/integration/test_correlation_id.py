import json

import pytest

from shop.observability.context import correlation_id_var
from tests.conftest import CONTEXT_DBS
from tests.support.worker import wait_until


@pytest.mark.django_db(databases=CONTEXT_DBS)
def test_correlation_id_is_echoed_or_generated(client):
    response = client.get("/health/live", HTTP_X_CORRELATION_ID="abc-123")
    assert response["X-Correlation-ID"] == "abc-123"
    generated = client.get("/health/live")["X-Correlation-ID"]
    assert len(generated) == 36


@pytest.mark.django_db(databases=CONTEXT_DBS)
def test_unsafe_correlation_id_is_replaced(client):
    response = client.get("/health/live", HTTP_X_CORRELATION_ID="bad id\nwith newline")
    assert response["X-Correlation-ID"] != "bad id\nwith newline"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)
def test_correlation_id_reaches_the_celery_tasks_log(celery_worker):
    from shop.health.tasks import ping

    token = correlation_id_var.set("corr-into-celery-42")
    try:
        ping.delay("hello")
    finally:
        correlation_id_var.reset(token)

    def ping_line():
        for line in celery_worker.log().splitlines():
            if line.startswith("{") and '"worker_ping"' in line:
                return json.loads(line)
        return None

    record = wait_until(ping_line, timeout=20, message="the worker's ping log line")
    assert record["correlation_id"] == "corr-into-celery-42"
    assert record["task"] == "shop.health.ping"
