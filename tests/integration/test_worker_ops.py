"""A real Celery worker's own ops endpoint: its metrics (prefork children included) and readiness."""

import json
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import CONTEXT_DBS
from tests.e2e.checkout import customer_client, place, poll_status
from tests.factories.orders import stocked_products
from tests.support.ports import free_port
from tests.support.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)]


def fetch(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def sample(text: str, name: str, **labels) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_checkout_deliveries_in_prefork_children_reach_the_workers_metrics_endpoint(worker_factory, tmp_path):
    port = free_port()
    worker_factory(concurrency=2, env={"PROMETHEUS_MULTIPROC_DIR": tmp_path, "WORKER_OPS_PORT": port})
    products = stocked_products(1, price=Decimal("9.00"), on_hand=5)
    client = customer_client("metrics@example.com")
    order_id = place(client, [products[0].id])
    assert poll_status(client, order_id)["status"] == "CONFIRMED"

    def scraped():
        status, body = fetch(port, "/metrics")
        text = body.decode()
        done = sample(text, "checkout_saga_outcomes_total", outcome="completed") >= 1
        # The saga completes inside the last delivery task, before that task's own counters are
        # written (task_postrun): wait until every run counted so far has measured its batch.
        runs = sample(text, "celery_tasks_total", task="shop.events.deliver")
        measured = sample(text, "celery_task_batch_size_count", task="shop.events.deliver") == runs
        return text if status == 200 and done and measured else None

    text = wait_until(scraped, timeout=30, message="the completed saga and its tasks in the worker's metrics")
    assert sample(text, "celery_tasks_total", task="shop.events.deliver", state="SUCCESS") >= 2
    assert sample(text, "celery_task_duration_seconds_count", task="shop.events.deliver") >= 2
    delivered = sample(text, "events_delivered_total")
    assert delivered >= 5
    # Deliveries are batched (celery-batches): every run of the batch task measured its batch.
    runs = sample(text, "celery_tasks_total", task="shop.events.deliver")
    assert sample(text, "celery_task_batch_size_count", task="shop.events.deliver") == runs
    assert sample(text, "checkout_saga_step_duration_seconds_count", step="RESERVE_STOCK") == 1
    assert sample(text, "payment_provider_request_duration_seconds_count", operation="authorize", outcome="ok") == 1
    assert sample(text, "checkout_saga_duration_seconds_count", outcome="completed") == 1


def test_worker_readiness_is_ok_then_down_when_its_database_is_unreachable(worker_factory):
    healthy_port, broken_port = free_port(), free_port()
    worker_factory(env={"WORKER_OPS_PORT": healthy_port})
    worker_factory(env={"WORKER_OPS_PORT": broken_port, "ORDERS_DATABASE_URL": "postgres://postgres@127.0.0.1:1/x"})

    status, body = fetch(healthy_port, "/health/ready")
    assert status == 200, body
    status, body = fetch(broken_port, "/health/ready")
    report = json.loads(body)
    assert status == 503
    assert report["checks"]["database:orders"]["status"] == "down"
    assert report["checks"]["database:catalog"]["status"] == "ok"
