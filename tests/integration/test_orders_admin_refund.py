"""The order page's Refund action: one refund, and one admin-log record, per form shown."""

from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry

from apps.payments import facade
from apps.payments.gateway.resilience import breaker
from apps.payments.models import Payment
from tests.conftest import CONTEXT_DBS
from tests.factories.orders import OrderFactory

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


def test_a_refund_form_submitted_again_refunds_once_and_writes_one_admin_log_record(admin_browser):
    """The second submission (a double-click, or staff retrying after "still in progress") got the
    payments log's stored answer and was recorded as a refund of its own: two "Refund: Refunded 5.00
    USD" records for one refund. It now says the first submission did it, and records nothing."""
    breaker().close()
    order = OrderFactory()
    facade.payment_authorize(
        order_id=order.id, amount=Decimal("25.00"), currency="USD", token="tok_visa", idempotency_key="a"
    )
    facade.payment_capture(order_id=order.id, idempotency_key="c")
    url = f"/admin/orders/order/{order.pk}/act/refund/"
    once = admin_browser.get(url).context["form"]["idempotency_key"].value()
    body = {"amount": "5.00", "reason": "damaged", "idempotency_key": once}

    first = admin_browser.post(url, body)
    second = admin_browser.post(url, body)

    assert first.status_code == 302
    assert second.status_code == 200
    assert second.context["form"].non_field_errors() == [
        "Already done by this form's first submission: Refunded 5.00 USD."
    ]
    assert Payment.objects.get(order_id=order.id).refunded_amount == Decimal("5.00")
    assert LogEntry.objects.filter(object_id=str(order.pk), change_message__startswith="Refund:").count() == 1
