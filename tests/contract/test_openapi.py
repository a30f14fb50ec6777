"""The served OpenAPI documents are valid, self-consistent and describe the envelope."""

import json

import pytest
from openapi_spec_validator import OpenAPIV30SpecValidator

from tests.conftest import CONTEXT_DBS

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


def _schema(client, url):
    response = client.get(url, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


@pytest.mark.parametrize(("url", "version"), [("/api/schema/", "v1"), ("/api/schema/v2/", "v2")])
def test_every_reference_resolves_on_repeated_generation(client, url, version):
    for _ in range(2):  # hooks once mutated shared dicts: the second document broke
        schema = _schema(client, url)
        components = schema["components"]["schemas"]
        for ref in _refs(schema):
            assert ref.split("/")[-1] in components, f"dangling {ref}"
    paths = schema["paths"]
    assert paths and all(path.startswith(f"/api/{version}/") for path in paths)
    assert f"/api/{version}/orders" in paths


def test_responses_are_documented_inside_the_envelope(client):
    schema = _schema(client, "/api/schema/")
    detail = schema["paths"]["/api/v1/orders/{order_id}"]["get"]["responses"]
    ok = detail["200"]["content"]["application/json"]["schema"]
    assert ok["required"] == ["success", "data"]
    assert detail["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorEnvelope")
    listing = schema["paths"]["/api/v1/orders"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    paginated = schema["components"]["schemas"][listing["$ref"].split("/")[-1]]
    assert set(paginated["properties"]["pagination"]["required"]) >= {"hasNext", "hasPrev", "pages"}


def test_swagger_ui_pages_render(client):
    for url in ("/api/docs/", "/api/docs/v2/"):
        response = client.get(url)
        assert response.status_code == 200
        assert b"swagger-ui" in response.content


@pytest.mark.parametrize("url", ["/api/schema/", "/api/schema/v2/"])
def test_the_published_document_validates_against_the_openapi_specification(client, url):
    schema = _schema(client, url)
    assert schema["openapi"].startswith("3.0.")
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in OpenAPIV30SpecValidator(schema).iter_errors()
    ]
    assert errors == []
