"""Least privilege for staff (finding 4): a permission per staff action, four groups."""

import importlib
import uuid
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connections
from django.test import Client
from rest_framework.test import APIClient

from apps.inventory.models import StockItem
from apps.orders.models import Order, OrderStatus
from apps.payments import facade as payments
from apps.payments.gateway.resilience import breaker
from apps.payments.models import Payment, PaymentStatus
from shop.security import staff
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import UserFactory
from tests.factories.orders import OrderFactory, order_payload, stocked_products
from tests.support.events import drain

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


def staff_actions_for(obj) -> list[LogEntry]:
    """The staff actions recorded on one object (the admin's History page reads the same rows)."""
    content_type = ContentType.objects.get_for_model(obj, for_concrete_model=False)
    return list(LogEntry.objects.filter(content_type=content_type, object_id=str(obj.pk)))


staff_groups = importlib.import_module("apps.accounts.migrations.0004_staff_groups")


def _group_perms(name: str) -> set[str]:
    group = Group.objects.using("accounts").get(name=name)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def test_data_migration_creates_the_four_staff_groups_with_their_permissions():
    # A transactional test elsewhere may have flushed the tables: re-run the migration's own
    # function (idempotent) on the test database, then check what it made.
    class _Editor:
        connection = connections["accounts"]

    staff_groups.create_groups(django_apps, _Editor())

    assert staff.perm(staff.REFUND_PAYMENT) in _group_perms("finance")
    assert staff.perm(staff.REFUND_PAYMENT) not in _group_perms("warehouse")
    assert {staff.perm(staff.SHIP_ORDER), staff.perm(staff.ADJUST_STOCK)} <= _group_perms("warehouse")
    assert staff.perm(staff.EDIT_CATALOG) in _group_perms("catalog")
    assert {staff.perm(staff.OPERATE_CHECKOUTS), staff.perm(staff.REPLAY_DEAD_LETTERS)} <= _group_perms("support")
    assert "payments.view_payment" in _group_perms("finance")

    member = UserFactory(staff=True, perms=[])
    member.groups.add(Group.objects.using("accounts").get(name="warehouse"))
    member = type(member).objects.get(pk=member.pk)
    assert member.has_perm(staff.perm(staff.SHIP_ORDER))
    assert not member.has_perm(staff.perm(staff.REFUND_PAYMENT))


def test_every_staff_permission_the_code_names_exists():
    codenames = set(
        Permission.objects.using("accounts")
        .filter(content_type__app_label=staff.APP_LABEL)
        .values_list("codename", flat=True)
    )
    assert {codename for codename, _ in staff.PERMISSIONS} <= codenames
    assert set(staff_groups.STAFF_PERMISSIONS) == {codename for codename, _ in staff.PERMISSIONS}


# --- attacks: staff without the permission -----------------------------------------------------


@pytest.fixture
def captured_payment():
    """A customer's order with a captured 25.00 payment (through the FakeGateway)."""
    breaker().close()
    order = OrderFactory(user_id=UserFactory().id)
    payments.payment_authorize(
        order_id=order.id, amount=Decimal("25.00"), currency="USD", token="tok_visa", idempotency_key="a"
    )
    payments.payment_capture(order_id=order.id, idempotency_key="c")
    return Payment.objects.get(order_id=order.id)


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_staff_without_refund_permission_cannot_refund_through_the_api(captured_payment):
    nobody = _api(UserFactory(staff=True, perms=[]))
    warehouse = _api(UserFactory(staff=True, perms=[staff.SHIP_ORDER, staff.ADJUST_STOCK, staff.VIEW_CUSTOMERS]))
    for client in (nobody, warehouse):
        response = client.post(
            f"/api/v1/payments/{captured_payment.id}/refund", {}, format="json", HTTP_IDEMPOTENCY_KEY="steal"
        )
        assert response.status_code == 403, response.content
        assert response.json()["error"]["code"] == "FORBIDDEN"
    captured_payment.refresh_from_db()
    assert captured_payment.refunded_amount == 0

    finance = _api(UserFactory(staff=True, perms=[staff.REFUND_PAYMENT]))
    response = finance.post(
        f"/api/v1/payments/{captured_payment.id}/refund",
        {"reason": "damaged"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="ok",
    )
    assert response.status_code == 200, response.content


_CONFIRMED = {"confirm": "yes", "reason": "damaged"}  # the action's confirmation step, answered


def test_staff_with_only_view_payment_cannot_refund_through_the_admin(captured_payment):
    viewer = UserFactory(staff=True, perms=[])
    viewer.user_permissions.add(Permission.objects.using("accounts").get(codename="view_payment"))
    client = Client()
    client.force_login(viewer)
    assert client.get("/admin/payments/payment/").status_code == 200

    client.post(
        "/admin/payments/payment/",
        {**_CONFIRMED, "action": "refund_remaining", "_selected_action": [str(captured_payment.id)]},
        follow=True,
    )
    captured_payment.refresh_from_db()
    assert captured_payment.refunded_amount == 0
    assert captured_payment.status == PaymentStatus.CAPTURED

    # The same request from finance (view + refund) does refund: the attack above was refused.
    viewer.user_permissions.add(Permission.objects.using("accounts").get(codename=staff.REFUND_PAYMENT))
    client.post(
        "/admin/payments/payment/",
        {**_CONFIRMED, "action": "refund_remaining", "_selected_action": [str(captured_payment.id)]},
        follow=True,
    )
    captured_payment.refresh_from_db()
    assert captured_payment.status == PaymentStatus.REFUNDED


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/api/v1/users", None),
        ("/api/v1/products", {"sku": "X-1", "name": "X", "price": "1.00", "currency": "USD"}),
        (f"/api/v1/inventory/{uuid.uuid4()}/adjustments", {"delta": 5, "reason": "RESTOCK"}),
        (f"/api/v1/orders/{uuid.uuid4()}/ship", {"trackingNumber": "TRK1"}),
        (f"/api/v1/orders/{uuid.uuid4()}/deliver", {}),
        (f"/api/v1/orders/{uuid.uuid4()}/events", None),
    ],
)
def test_every_staff_endpoint_refuses_staff_without_its_permission(path, payload):
    client = _api(UserFactory(staff=True, perms=[]))
    response = client.get(path) if payload is None else client.post(path, payload, format="json")
    assert response.status_code == 403, (path, response.content)


# --- a refunded order stays in the warehouse; money and stock moves are on record -----------


def _paid_order() -> uuid.UUID:
    customer = _api(UserFactory())
    response = customer.post("/api/v1/orders", order_payload(stocked_products(1, price=Decimal("7.00"))), format="json")
    order_id = uuid.UUID(response.json()["data"]["id"])
    drain()
    assert Order.objects.get(pk=order_id).status == OrderStatus.CONFIRMED
    assert Payment.objects.get(order_id=order_id).status == PaymentStatus.CAPTURED
    return order_id


def test_a_refunded_order_cannot_be_shipped():
    order_id = _paid_order()
    payment = Payment.objects.get(order_id=order_id)
    finance = UserFactory(staff=True, perms=[staff.REFUND_PAYMENT])
    refund = _api(finance).post(
        f"/api/v1/payments/{payment.id}/refund",
        {"amount": "1.00", "reason": "goodwill"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="partial",
    )
    assert refund.status_code == 200, refund.content

    warehouse = _api(UserFactory(staff=True, perms=[staff.SHIP_ORDER]))
    response = warehouse.post(f"/api/v1/orders/{order_id}/ship", {"trackingNumber": "1Z999"}, format="json")
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "INVALID_STATE"
    assert Order.objects.get(pk=order_id).status == OrderStatus.CONFIRMED


def test_money_and_stock_moving_staff_actions_record_who_when_and_why():
    order_id = _paid_order()
    payment = Payment.objects.get(order_id=order_id)
    finance = UserFactory(staff=True, perms=[staff.REFUND_PAYMENT])
    _api(finance).post(
        f"/api/v1/payments/{payment.id}/refund", {"reason": "parcel lost"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    item = StockItem.objects.get(product_id=Order.objects.get(pk=order_id).items.get().product_id)
    warehouse = UserFactory(staff=True, perms=[staff.ADJUST_STOCK])
    _api(warehouse).post(
        f"/api/v1/inventory/{item.product_id}/adjustments", {"delta": 3, "reason": "found in aisle 4"}, format="json"
    )

    (refund,) = staff_actions_for(payment)
    assert refund.user_id == finance.pk and refund.action_time is not None
    assert refund.change_message.startswith("Refund: ") and "Reason: parcel lost" in refund.change_message
    (adjustment,) = staff_actions_for(item)
    assert adjustment.user_id == warehouse.pk
    assert "+3 units" in adjustment.change_message and "Reason: found in aisle 4" in adjustment.change_message
