"""Browser-facing edge: CORS, Content-Security-Policy per path, security headers, body cap."""

import pytest

from tests.conftest import CONTEXT_DBS

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)

ALLOWED = "http://localhost:3000"
EVIL = "https://evil.example"
TOKEN = "/api/v1/auth/token"


def preflight(client, origin, path=TOKEN, method="POST", headers="authorization, content-type"):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )


# --- CORS ------------------------------------------------------------------------------------


def test_cors_preflight_from_an_allowed_origin(client, settings):
    settings.CORS_ALLOWED_ORIGINS = [ALLOWED, "https://shop.example"]
    response = preflight(client, "https://shop.example", method="PATCH")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"
    methods = {m.strip() for m in response["Access-Control-Allow-Methods"].split(",")}
    assert methods == {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
    assert {"authorization", "content-type"} <= {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert response["Access-Control-Max-Age"] == "600"
    assert "Access-Control-Allow-Credentials" not in response


def test_cors_preflight_from_a_disallowed_origin_gets_no_grant(client):
    response = preflight(client, EVIL)
    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Allow-Methods" not in response


def test_cors_actual_request_exposes_pagination_and_rate_limit_headers(client):
    response = client.get("/api/v1/auth/me", HTTP_ORIGIN=ALLOWED)
    assert response["Access-Control-Allow-Origin"] == ALLOWED
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {"x-total-count", "x-page-count", "retry-after", "ratelimit", "ratelimit-policy"} <= exposed
    assert "Access-Control-Allow-Origin" not in client.get("/api/v1/auth/me", HTTP_ORIGIN=EVIL)


def test_cors_is_api_only(client):
    response = preflight(client, ALLOWED, path="/admin/login/")
    assert "Access-Control-Allow-Origin" not in response


def test_a_429_is_readable_by_an_allowed_browser_origin(client, settings):
    settings.RATELIMIT_ANON = "1/d"
    client.get("/api/v1/auth/me", HTTP_ORIGIN=ALLOWED)
    limited = client.get("/api/v1/auth/me", HTTP_ORIGIN=ALLOWED)
    assert limited.status_code == 429
    assert limited["Access-Control-Allow-Origin"] == ALLOWED


# --- Content-Security-Policy -------------------------------------------------------------------


def _csp(response) -> dict[str, set[str]]:
    directives = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        directives[name] = set(values)
    return directives


@pytest.mark.parametrize("path", ["/api/v1/auth/me", "/api/v1/nope", "/api/schema/", "/health/live"])
def test_api_and_other_non_html_responses_get_the_strict_policy(client, path):
    csp = _csp(client.get(path))
    assert csp["default-src"] == {"'none'"}
    assert csp["frame-ancestors"] == {"'none'"}
    assert "script-src" not in csp


def test_admin_gets_a_same_origin_policy_and_still_renders(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content
    csp = _csp(response)
    assert csp["default-src"] == {"'self'"}
    assert csp["form-action"] == {"'self'"}
    assert csp["frame-ancestors"] == {"'none'"}
    assert not any("unsafe" in value for values in csp.values() for value in values)


def test_swagger_ui_works_under_its_policy_without_inline_script(client, settings):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    csp = _csp(response)
    assert csp["script-src"] == {"'self'", settings.SWAGGER_UI_CDN}
    assert csp["connect-src"] == {"'self'"}
    assert f'src="{settings.SWAGGER_UI_CDN}/npm/swagger-ui-dist@5/swagger-ui-bundle.js"' in html
    assert '<script src="/api/docs/?script=">' in html
    assert "<script>" not in html  # every script has a src the policy allows

    init = client.get("/api/docs/?script=")
    assert init.status_code == 200
    assert "SwaggerUIBundle" in init.content.decode()


@pytest.mark.parametrize("path", ["/api/v1/products", "/api/v1/nope", "/admin/login/", "/api/docs/", "/health/live"])
def test_the_policy_built_once_per_path_is_the_one_django_csp_builds_each_time(client, path):
    from csp.middleware import CSPMiddleware
    from django.http import HttpResponse
    from django.test import RequestFactory

    from shop.security import csp

    csp._built.clear()
    first, again = client.get(path), client.get(path)  # the second is answered from the remembered header
    assert csp._built
    middleware = csp.PathCSPMiddleware(lambda request: HttpResponse())
    rebuilt = CSPMiddleware.process_response(middleware, RequestFactory().get(path), HttpResponse())
    assert first["Content-Security-Policy"] == again["Content-Security-Policy"] == rebuilt["Content-Security-Policy"]


def test_a_changed_policy_setting_is_not_answered_from_the_remembered_header(client, settings):
    client.get("/api/v1/products")
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"], "img-src": ["'self'"]}}
    assert _csp(client.get("/api/v1/products"))["img-src"] == {"'self'"}


# --- security headers ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/auth/me", "/admin/login/", "/health/live"])
def test_security_headers_on_every_response(client, path):
    response = client.get(path)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_hsts_with_preload_on_https_in_the_production_shape(client, settings):
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    response = client.get("/api/v1/auth/me", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_ssl_redirect_spares_health_probes(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/api/v1/auth/me").status_code == 301
    assert client.get("/health/live").status_code == 200
    assert client.get("/metrics").status_code == 200


# --- request body cap --------------------------------------------------------------------------


def test_oversized_body_is_413_in_the_envelope(client, settings):
    settings.MAX_REQUEST_BODY_BYTES = 1024
    body = '{"email": "a@example.com", "password": "' + "x" * 2048 + '"}'
    response = client.post("/api/v1/auth/register", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_admin_static_files_are_served_by_the_app(client):
    """No separate web server is needed for the admin's assets (WhiteNoise)."""
    response = client.get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert b"body" in b"".join(response.streaming_content)
