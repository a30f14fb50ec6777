"""Sentry, through a local transport: a view exception and a task exception (real worker) are
reported with the correlation id, release and environment, and without tokens, passwords or card data."""

import json

import pytest
import sentry_sdk
from django.test import Client

from shop.observability import errors
from shop.observability.context import correlation_id_var
from tests.conftest import CONTEXT_DBS
from tests.support.eventprobe.handlers import explode
from tests.support.sentryfile import read_events
from tests.support.worker import wait_until

DSN = "http://public@127.0.0.1:9/1"  # never contacted: the transport writes a file
RELEASE = "shop@9.9.9-test"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJlLXRlc3Q"
CARD_TOKEN = "tok_visa_4f9a8b7c"
CARD_NUMBER = "4242424242424242"
PASSWORD = "correct horse battery staple"
SECRETS = (JWT, CARD_TOKEN, CARD_NUMBER, PASSWORD, "4242 4242 4242 4242")


@pytest.fixture
def sentry_file(tmp_path, monkeypatch):
    path = tmp_path / "sentry.jsonl"
    monkeypatch.setenv("SHOP_TEST_SENTRY_FILE", str(path))
    from tests.support.sentryfile import FileTransport

    errors.init(DSN, environment="test", release=RELEASE, transport=FileTransport)
    yield path
    sentry_sdk.init(dsn=None)


def assert_clean(event: dict) -> None:
    text = json.dumps(event)
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, f"leaked into the Sentry event: {leaked}"


@pytest.mark.urls("tests.support.error_urls")
@pytest.mark.django_db(databases=CONTEXT_DBS)
def test_a_view_exception_is_reported_with_correlation_release_environment_and_no_secrets(sentry_file, customer):
    from rest_framework_simplejwt.tokens import AccessToken

    jwt = str(AccessToken.for_user(customer))
    client = Client(raise_request_exception=False)
    response = client.post(
        f"/api/v1/boom-with-secrets?card={CARD_NUMBER}",
        data={"password": PASSWORD, "payment": {"token": CARD_TOKEN, "cardNumber": CARD_NUMBER}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {jwt}",
        HTTP_X_CORRELATION_ID="view-boom-1",
    )
    assert response.status_code == 500
    sentry_sdk.flush()
    [event] = read_events(sentry_file)
    assert event["tags"]["correlation_id"] == "view-boom-1"
    assert event["release"] == RELEASE and event["environment"] == "test"
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert_clean(event)
    assert jwt not in json.dumps(event)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)
def test_a_task_exception_in_a_real_worker_is_reported_with_correlation_release_environment_and_no_secrets(
    worker_factory, tmp_path
):
    path = tmp_path / "worker-sentry.jsonl"
    worker_factory(
        env={"SENTRY_DSN": DSN, "SENTRY_RELEASE": RELEASE, "SHOP_TEST_SENTRY_FILE": path, "DJANGO_ENV": "test"}
    )
    token = correlation_id_var.set("task-boom-1")
    try:
        explode.apply_async(args=[CARD_TOKEN, PASSWORD])
    finally:
        correlation_id_var.reset(token)
    [event] = wait_until(lambda: read_events(path), timeout=30, message="the worker's Sentry event")
    assert event["tags"]["correlation_id"] == "task-boom-1"
    assert event["release"] == RELEASE and event["environment"] == "test"
    assert event["exception"]["values"][-1]["type"] == "ProbeFailure"
    assert_clean(event)
