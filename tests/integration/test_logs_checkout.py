"""Every log line a real worker writes while it handles a checkout names the order's correlation id and trace."""

import json
from decimal import Decimal

import pytest

from apps.orders.saga.models import CheckoutSaga, SagaStatus
from apps.payments.models import Payment
from tests.conftest import CONTEXT_DBS
from tests.e2e.checkout import customer_client, order_body, poll_status
from tests.factories.orders import stocked_products
from tests.support.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)]

CORRELATION_ID = "checkout-log-test-42"


def test_every_worker_log_line_of_a_checkout_carries_the_correlation_id_and_one_trace_id(worker_factory):
    worker = worker_factory(env={"OTEL_ENABLED": "true", "LOG_JSON": "true"})
    products = stocked_products(1, price=Decimal("3.00"), on_hand=5)
    client = customer_client("logs@example.com")
    response = client.post(
        "/api/v1/orders", order_body([products[0].id]), format="json", HTTP_X_CORRELATION_ID=CORRELATION_ID
    )
    assert response.status_code == 201, response.json()
    order_id = response.json()["data"]["id"]
    assert poll_status(client, order_id)["status"] == "CONFIRMED"
    wait_until(lambda: Payment.objects.filter(order_id=order_id, status="CAPTURED").exists(), message="capture")
    wait_until(
        lambda: CheckoutSaga.objects.filter(order_id=order_id, status=SagaStatus.COMPLETED).exists(), message="saga end"
    )
    # The saga's last step (COMPLETED) is logged by the worker in the transaction that ends it.
    wait_until(lambda: '"outcome": "COMPLETED"' in worker.log(), message="the saga's last log line")

    after_ready = worker.log().split(" ready.", 1)[1].split("\n", 1)[1]
    lines = [line for line in after_ready.splitlines() if line.strip()]
    assert sum('"saga_step"' in line for line in lines) >= 3, after_ready  # a line per step the worker ran
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a line that is not a structured record: {line!r}")
    without_ids = [r for r in records if r.get("correlation_id") != CORRELATION_ID or not r.get("trace_id")]
    assert not without_ids, "lines without the correlation id or a trace id:\n" + "\n".join(map(str, without_ids))
    assert len({r["trace_id"] for r in records}) == 1
