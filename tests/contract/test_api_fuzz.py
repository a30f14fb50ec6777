"""Schemathesis fuzzes every operation of both served OpenAPI documents.

For generated input, valid and invalid alike, no operation may answer 5xx, and every answer
must be documented: its status code, its content type and its body schema (the envelope).

The documents are fetched from the running app (the WSGI application, in process) when the
module is collected, exactly as a client would read them. (``schemathesis.pytest.from_fixture``
would load them inside a fixture instead, but on pytest 9.2 it fails: it sets ``node._nodeid``.)

Why in process and not transactional: the app then runs in the test's thread, shares the
test's connections and sees the seeded rows, and everything is rolled back afterwards. As
Django's own test client does, ``close_old_connections`` is kept from closing (in a test:
breaking) the connection at the end of every request.
"""

import os
import uuid
import zlib

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from tests.conftest import CONTEXT_DBS
from tests.factories.accounts import UserFactory
from tests.factories.orders import OrderFactory, stocked_products
from tests.factories.payments import PaymentFactory

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Derandomized, few examples, no example database: the same cases on every run, bounded in time.
# To hunt for more locally: API_FUZZ_EXAMPLES=60 API_FUZZ_RANDOM=1 (new cases on every run).
FUZZ_CONFIG = {
    "seed": 20240601,
    "generation": {
        "mode": "all",  # valid and invalid input
        "max-examples": int(os.environ.get("API_FUZZ_EXAMPLES", "10")),
        "deterministic": not os.environ.get("API_FUZZ_RANDOM"),
        "database": "none",
    },
    "phases": {"stateful": {"enabled": False}},
    "suppress-health-check": ["all"],
}
# Body fields that name a seeded row: wire name → path parameter name.
BODY_ID_FIELDS = {"productId": "product_id"}


def _served(url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_wsgi(url, application, config=schemathesis.Config.from_dict(FUZZ_CONFIG))


@pytest.fixture
def _in_process_requests():
    """What django.test.Client does around each request, for the whole test."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(settings, _in_process_requests):
    """A customer with orders and payments, a staff user, products in stock."""
    settings.RATELIMIT_ENABLE = False
    customer, staff = UserFactory(), UserFactory(staff=True)
    products = stocked_products(3)
    orders = [OrderFactory(user_id=customer.id) for _ in range(2)]
    payments = [PaymentFactory(order_id=order.id) for order in orders]
    return {
        "users": {"customer": customer, "staff": staff},
        "ids": {
            "product_id": [str(p.id) for p in products],
            "order_id": [str(o.id) for o in orders],
            "payment_id": [str(p.id) for p in payments],
        },
    }


def _aim_at_seeded_rows(node, ids: dict, pick: int) -> None:
    """Replace generated ids (path parameters, ``productId`` in bodies) by seeded rows' ids.

    Random UUIDs only ever find 404s; this way operations reach their 2xx and 409 paths too.
    """
    if isinstance(node, list):
        for value in node:
            _aim_at_seeded_rows(value, ids, pick)
        return
    if not isinstance(node, dict):
        return
    for name, value in node.items():
        known = ids.get(BODY_ID_FIELDS.get(name, name))
        if known and isinstance(value, str) and _is_uuid(value):
            node[name] = known[pick % len(known)]
        else:
            _aim_at_seeded_rows(value, ids, pick)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@schemathesis.pytest.parametrize(v1=_served("/api/schema/"), v2=_served("/api/schema/v2/"))
@pytest.mark.parametrize("role", ["customer", "staff"])
def test_no_server_error_and_every_response_is_documented(case, role, world):
    # Half of the cases, chosen from the case itself: a replayed (shrunk) case is aimed the same way.
    pick = zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode())
    if pick % 2 == 0:
        _aim_at_seeded_rows(case.path_parameters, world["ids"], pick // 2)
        _aim_at_seeded_rows(case.body, world["ids"], pick // 2)
    token = RefreshToken.for_user(world["users"][role]).access_token
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
