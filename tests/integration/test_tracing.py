import pytest
from django.db import connections
from django.test import Client
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shop.health import checks
from shop.observability import tracing
from tests.conftest import CONTEXT_DBS


@pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)
def test_a_request_yields_a_server_span_with_its_sql_as_children():
    checks.forget()  # a cached readiness verdict would run no SQL
    exporter = InMemorySpanExporter()
    tracing.instrument(tracing.build_provider(exporter, SimpleSpanProcessor))
    connections.close_all()  # new connections are made through the instrumented driver
    try:
        response = Client().get("/health/ready")
    finally:
        tracing.uninstrument()
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.kind.name == "SERVER"]
    assert len(server) == 1 and "health/ready" in server[0].name
    sql = [s for s in spans if s.kind.name == "CLIENT" and s.parent and s.parent.span_id == server[0].context.span_id]
    assert len(sql) >= 5  # one readiness query per context database
