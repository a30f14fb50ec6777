"""One trace per order: a checkout through a real worker shares the POST's trace id.

The test process records its spans (the POST, the outbox writes, the Celery publishes, the
SQL) with OpenTelemetry's in-memory exporter; the worker subprocess runs with tracing on and
a test-only JSON-lines exporter (tests/support/spanfile.py). Asserted: the deliveries of every
checkout event, each saga step, the provider calls and the worker's SQL carry the POST's trace
id, and every span of that trace has its parent among the recorded spans (no broken links).
Deliveries run in batch tasks (celery-batches) that serve many orders at once: a batch task's
span is not in the order's trace, the deliveries it ran link to it.
"""

from decimal import Decimal

import pytest
from django.db import connections
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from apps.payments.models import Payment
from shop.observability import tracing
from tests.conftest import CONTEXT_DBS
from tests.e2e.checkout import customer_client, place, poll_status
from tests.factories.orders import stocked_products
from tests.support.spanfile import read_spans, span_record
from tests.support.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)]


@pytest.fixture
def traced_here():
    exporter = InMemorySpanExporter()
    tracing.instrument(tracing.build_provider(exporter, SimpleSpanProcessor))
    connections.close_all()  # new connections are made through the instrumented driver
    yield exporter
    tracing.uninstrument()
    connections.close_all()


def test_a_checkout_through_a_real_worker_is_one_trace_with_unbroken_parent_links(
    worker_factory, traced_here, tmp_path
):
    worker_factory(env={"OTEL_ENABLED": "true", "SHOP_TEST_SPAN_DIR": tmp_path, "OTEL_SERVICE_NAME": "worker"})
    products = stocked_products(1, price=Decimal("4.00"), on_hand=5)
    client = customer_client("traced@example.com")
    order_id = place(client, [products[0].id])
    assert poll_status(client, order_id)["status"] == "CONFIRMED"
    wait_until(lambda: Payment.objects.filter(order_id=order_id, status="CAPTURED").exists(), message="capture")

    here = [span_record(s) for s in traced_here.get_finished_spans()]
    post = next(s for s in here if s["kind"] == "SERVER" and s["name"].startswith("POST") and "orders" in s["name"])
    trace_id = post["trace_id"]

    def whole_trace():
        spans = [s for s in here + read_spans(tmp_path) if s["trace_id"] == trace_id]
        names = {s["name"] for s in spans}
        captured = any(n.startswith("deliver payment.capture_succeeded") for n in names)
        return spans if "saga.step CAPTURE_PAYMENT" in names and captured else None

    spans = wait_until(whole_trace, timeout=30, message="the worker's spans of the whole checkout")
    names = {s["name"] for s in spans}
    worker_spans = [s for s in spans if s["pid"] != post["pid"]]

    assert "publish order.created" in names  # the outbox write, under the POST
    for event in (
        "checkout.stock_reservation_requested",
        "inventory.stock_reserved",
        "checkout.payment_authorization_requested",
        "payment.authorization_succeeded",
        "checkout.payment_capture_requested",
        "payment.capture_succeeded",
    ):
        assert any(n.startswith(f"deliver {event} to ") for n in names), f"no delivery span of {event}: {names}"
    for step in ("RESERVE_STOCK", "AUTHORIZE_PAYMENT", "CAPTURE_PAYMENT"):
        assert f"saga.step {step}" in names
    assert {"payment.authorize", "payment.capture"} <= names
    assert any(s["kind"] == "CLIENT" and "db.system" in s["attributes"] for s in worker_spans), "no worker SQL span"
    # A batch task runs deliveries of many orders, so its span has a trace of its own; the
    # deliveries it ran link to it.
    batch_runs = {s["span_id"] for s in read_spans(tmp_path) if s["name"].startswith("run/")}
    deliveries = [s for s in worker_spans if s["name"].startswith("deliver ")]
    assert any(set(s["links"]) & batch_runs for s in deliveries), "no delivery linked to its Celery task span"

    ids = {s["span_id"] for s in spans}
    roots = [s for s in spans if s["parent_id"] is None]
    orphans = [s["name"] for s in spans if s["parent_id"] is not None and s["parent_id"] not in ids]
    assert [r["span_id"] for r in roots] == [post["span_id"]]
    assert not orphans, f"spans whose parent is not in the trace: {orphans}"
