"""Staff see the checkout on the order page and can retry a step or compensate from the admin."""

import uuid
from decimal import Decimal

import pytest

from apps.orders.models import Order, OrderStatus
from apps.orders.saga.models import CheckoutSaga, SagaStatus, SagaStep
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import UserFactory
from tests.factories.orders import order_payload, stocked_products
from tests.support.events import drain
from tests.support.saga import drain_holding

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


@pytest.fixture
def stuck_order(api_client):
    """An order whose authorization command was lost: the saga waits in AUTHORIZE_PAYMENT."""
    api_client.force_authenticate(UserFactory())
    products = stocked_products(1, price=Decimal("3.00"), on_hand=4)
    response = api_client.post("/api/v1/orders", order_payload(products), format="json")
    order_id = uuid.UUID(response.json()["data"]["id"])

    drain_holding("checkout.payment_authorization_requested")  # lost
    assert CheckoutSaga.objects.get(order_id=order_id).current_step == SagaStep.AUTHORIZE_PAYMENT
    return order_id


def test_order_page_shows_the_saga_and_its_step_log(admin_browser, stuck_order):
    page = admin_browser.get(f"/admin/orders/order/{stuck_order}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "STARTED / AUTHORIZE_PAYMENT" in html
    assert "RESERVE_STOCK" in html and "SUCCEEDED" in html


def test_retry_step_action_asks_for_a_reason_then_resends_the_command(admin_browser, stuck_order):
    chosen = {"action": "retry_checkout_step", "_selected_action": [str(stuck_order)]}
    asked = admin_browser.post("/admin/orders/order/", chosen)
    assert asked.status_code == 200 and "Confirm: Retry checkout step" in asked.content.decode()
    drain()
    assert Order.objects.get(pk=stuck_order).status == OrderStatus.PENDING  # nothing re-sent yet

    response = admin_browser.post(
        "/admin/orders/order/", {**chosen, "confirm": "yes", "reason": "command lost"}, follow=True
    )
    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == [
        f"Retry checkout step: {Order.objects.get(pk=stuck_order)}: re-sent AUTHORIZE_PAYMENT"
    ]
    drain()
    assert Order.objects.get(pk=stuck_order).status == OrderStatus.CONFIRMED
    assert CheckoutSaga.objects.get(order_id=stuck_order).status == SagaStatus.COMPLETED


def test_compensate_now_action_cancels_the_checkout(admin_browser, stuck_order):
    saga = CheckoutSaga.objects.get(order_id=stuck_order)
    response = admin_browser.post(
        "/admin/orders/checkoutsaga/",
        {"action": "compensate_now", "_selected_action": [str(saga.pk)], "confirm": "yes", "reason": "card blocked"},
        follow=True,
    )
    assert response.status_code == 200
    drain()
    assert Order.objects.get(pk=stuck_order).status == OrderStatus.CANCELLED
    assert CheckoutSaga.objects.get(order_id=stuck_order).status == SagaStatus.COMPENSATED


def test_sagas_recover_command(stuck_order, settings):
    from io import StringIO

    from django.core.management import call_command
    from django.utils import timezone

    CheckoutSaga.objects.update(deadline=timezone.now())
    out = StringIO()
    call_command("sagas", "recover", stdout=out)
    assert "retried" in out.getvalue()
    call_command("sagas", "status", stdout=out)
    assert "STARTED" in out.getvalue()
