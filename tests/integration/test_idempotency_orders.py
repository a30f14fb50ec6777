"""Idempotency-Key on POST /orders (IETF draft semantics), against the real database."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from apps.orders.models import IdempotencyRecord, Order
from shop.api.idempotency import fingerprint
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import UserFactory
from tests.factories.orders import order_payload, stocked_products


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _post(client, payload, key="key-1"):
    return client.post("/api/v1/orders", payload, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db(databases=CONTEXT_DBS)
class TestSequential:
    @pytest.fixture
    def user(self):
        return UserFactory()

    @pytest.fixture
    def payload(self):
        return order_payload(stocked_products(1))

    def test_retry_replays_the_first_response_and_creates_nothing(self, user, payload):
        client = _client(user)
        first = _post(client, payload)
        # Same payload, other key order and spacing: still the same request.
        second = client.post(
            "/api/v1/orders", dict(reversed(list(payload.items()))), format="json", HTTP_IDEMPOTENCY_KEY='"key-1"'
        )

        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second["Idempotent-Replayed"] == "true"
        assert not first.has_header("Idempotent-Replayed")
        assert Order.objects.count() == 1

    def test_same_key_other_payload_is_422(self, user, payload):
        client = _client(user)
        _post(client, payload)
        other = {**payload, "notes": "different"}

        response = _post(client, other)

        assert response.status_code == 422
        assert response.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
        assert Order.objects.count() == 1

    def test_same_key_while_in_flight_is_409(self, user, payload):
        request_hash = fingerprint({"method": "POST", "path": "/api/v1/orders", "body": _parsed(payload)})
        IdempotencyRecord.objects.create(
            scope=f"user:{user.pk}",
            key="key-1",
            request_hash=request_hash,
            locked_until=timezone.now() + timedelta(seconds=30),
            expires_at=timezone.now() + timedelta(hours=24),
        )

        response = _post(_client(user), payload)

        assert response.status_code == 409
        assert response.json()["error"]["code"] == "IDEMPOTENCY_KEY_IN_USE"
        assert response["Retry-After"] == "1"
        assert not Order.objects.exists()

    def test_a_crashed_first_attempt_is_taken_over_after_its_lease(self, user, payload):
        request_hash = fingerprint({"method": "POST", "path": "/api/v1/orders", "body": _parsed(payload)})
        IdempotencyRecord.objects.create(
            scope=f"user:{user.pk}",
            key="key-1",
            request_hash=request_hash,
            locked_until=timezone.now() - timedelta(seconds=1),
            expires_at=timezone.now() + timedelta(hours=24),
        )

        assert _post(_client(user), payload).status_code == 201
        assert Order.objects.count() == 1

    def test_keys_are_scoped_per_user(self, user, payload):
        assert _post(_client(user), payload).status_code == 201
        assert _post(_client(UserFactory()), payload).status_code == 201
        assert Order.objects.count() == 2

    def test_failed_requests_are_not_stored_so_the_key_can_be_retried(self, user, payload):
        client = _client(user)
        broken = {**payload, "shippingMethod": "teleport"}
        assert _post(client, broken).status_code == 400
        assert not IdempotencyRecord.objects.exists()
        assert _post(client, payload).status_code == 201

    def test_expired_key_is_a_new_key(self, user, payload):
        client = _client(user)
        _post(client, payload)
        IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

        response = _post(client, {**payload, "notes": "new"})

        assert response.status_code == 201 and not response.has_header("Idempotent-Replayed")
        assert Order.objects.count() == 2

    def test_records_are_kept_at_least_24_hours(self, user, payload):
        _post(_client(user), payload)
        record = IdempotencyRecord.objects.get()
        assert record.expires_at - record.created_at >= timedelta(hours=24) - timedelta(seconds=1)

    @pytest.mark.parametrize("key", ["", "x" * 256, "clé"])
    def test_malformed_key_is_400(self, user, payload, key):
        response = _post(_client(user), payload, key=key)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "IDEMPOTENCY_KEY_INVALID"


def _parsed(payload: dict) -> dict:
    """The request body as the view sees it (camelCase parsed to snake_case)."""
    from djangorestframework_camel_case.util import underscoreize

    return underscoreize(payload)


@pytest.mark.django_db(databases=CONTEXT_DBS, transaction=True)
def test_twenty_concurrent_identical_posts_create_exactly_one_order():
    user = UserFactory()
    payload = order_payload(stocked_products(1, on_hand=100))
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    bodies: list[dict] = []
    lock = threading.Lock()

    def attempt():
        try:
            client = _client(user)
            barrier.wait(timeout=30)
            response = _post(client, payload, key="same-key")
            with lock:
                statuses.append(response.status_code)
                bodies.append(response.json())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(statuses) == 20
    assert Order.objects.count() == 1
    assert set(statuses) <= {201, 409}, statuses
    created = [body for status, body in zip(statuses, bodies, strict=True) if status == 201]
    assert created and all(body["data"]["id"] == str(Order.objects.get().id) for body in created)
    conflicts = [body["error"]["code"] for body in bodies if not body["success"]]
    assert set(conflicts) <= {"IDEMPOTENCY_KEY_IN_USE"}
    # Once the first has finished, a retry replays it.
    assert _post(_client(user), payload, key="same-key")["Idempotent-Replayed"] == "true"


@pytest.mark.django_db(databases=CONTEXT_DBS, transaction=True)
def test_a_duplicate_of_a_running_request_gets_409_at_once_and_the_first_still_commits(monkeypatch):
    """The claim is written in the order's own transaction, not committed before it: the
    duplicate must neither wait on the uncommitted row nor create a second order."""
    from apps.orders import services

    user = UserFactory()
    payload = order_payload(stocked_products(1, on_hand=10))
    inside, release = threading.Event(), threading.Event()
    real_place = services.order_place

    def held_place(**kwargs):
        inside.set()
        assert release.wait(timeout=30)
        return real_place(**kwargs)

    monkeypatch.setattr(services, "order_place", held_place)
    first: list = []

    def run_first():
        try:
            first.append(_post(_client(user), payload, key="k"))
        finally:
            connections.close_all()

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        assert inside.wait(timeout=30)
        duplicate = _post(_client(user), payload, key="k")  # would block here if it waited on the row
    finally:
        release.set()
        thread.join(timeout=60)
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "IDEMPOTENCY_KEY_IN_USE"
    assert first[0].status_code == 201
    assert Order.objects.count() == 1
    assert _post(_client(user), payload, key="k")["Idempotent-Replayed"] == "true"


@pytest.mark.django_db(databases=CONTEXT_DBS, transaction=True)
def test_a_keyed_request_that_fails_midway_leaves_neither_its_order_nor_its_key(monkeypatch):
    """The claim rolled back with the failed work, so the same key runs the work again."""
    from apps.orders import services

    user = UserFactory()
    payload = order_payload(stocked_products(1, on_hand=10))
    real_write = services._order_write

    def failing_write(**kwargs):
        real_write(**kwargs)
        raise RuntimeError("the process died here")

    monkeypatch.setattr(services, "_order_write", failing_write)
    client = _client(user)
    client.raise_request_exception = False
    assert _post(client, payload, key="k").status_code == 500
    assert not IdempotencyRecord.objects.exists() and not Order.objects.exists()
    monkeypatch.setattr(services, "_order_write", real_write)
    assert _post(_client(user), payload, key="k").status_code == 201
    assert Order.objects.count() == 1
