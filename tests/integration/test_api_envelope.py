import pytest
from django.contrib.auth import get_user_model

from tests.conftest import CONTEXT_DBS

pytestmark = [pytest.mark.urls("tests.support.error_urls"), pytest.mark.django_db(databases=CONTEXT_DBS)]


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in response.content.decode()
    return body["error"]


def test_success_envelope_camelcases_keys_both_ways(api_client):
    response = api_client.post("/api/v1/echo", {"shippingAddress": "Main St", "quantity": 2}, format="json")
    assert response.status_code == 201
    assert response.json() == {
        "success": True,
        "data": {"shippingAddress": "Main St", "quantity": 2},
        "message": "echoed",
    }


def test_validation_error_has_per_field_details(api_client):
    response = api_client.post("/api/v1/echo", {"shippingAddress": "x" * 11, "quantity": 0}, format="json")
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(error["details"]) == {"shippingAddress", "quantity"}


def test_malformed_json_is_400_not_500(api_client):
    response = api_client.generic("POST", "/api/v1/echo", b'{"quantity": ', content_type="application/json")
    assert_error(response, 400, "MALFORMED_REQUEST")


def test_unsupported_media_type_is_415(api_client):
    response = api_client.generic("POST", "/api/v1/echo", b"quantity=1", content_type="text/plain")
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_wrong_method_is_405(api_client):
    assert_error(api_client.delete("/api/v1/echo"), 405, "METHOD_NOT_ALLOWED")


def test_unauthenticated_is_401(api_client):
    assert_error(api_client.get("/api/v1/private"), 401, "UNAUTHORIZED")


def test_garbage_bearer_token_is_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert_error(api_client.get("/api/v1/private"), 401, "UNAUTHORIZED")


def test_non_staff_is_403(api_client):
    user = get_user_model().objects.create_user(email="u@example.com", password="pw-123456789")
    api_client.force_authenticate(user)
    assert_error(api_client.get("/api/v1/staff"), 403, "FORBIDDEN")


def test_unknown_route_is_404_in_envelope(api_client):
    assert_error(api_client.get("/api/v1/nope"), 404, "NOT_FOUND")


def test_unknown_api_version_is_404(api_client):
    assert_error(api_client.get("/api/v9/users"), 404, "NOT_FOUND")


def test_throttled_is_429_with_retry_after(api_client):
    response = api_client.get("/api/v1/throttled")
    assert_error(response, 429, "RATE_LIMITED")
    assert response["Retry-After"] == "42"


def test_unhandled_exception_is_500_with_correlation_id_and_no_leak(api_client):
    api_client.raise_request_exception = False
    response = api_client.get("/api/v1/boom", HTTP_X_CORRELATION_ID="corr-500-test")
    error = assert_error(response, 500, "INTERNAL_ERROR")
    assert error["details"] == {"correlationId": "corr-500-test"}
    assert "secret internal detail" not in response.content.decode()


def test_body_too_large_is_413(api_client, settings):
    settings.MAX_REQUEST_BODY_BYTES = 100
    response = api_client.post("/api/v1/echo", {"shippingAddress": "x" * 200, "quantity": 1}, format="json")
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
