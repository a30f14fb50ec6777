"""OpenTelemetry tracing, opt-in with ``OTEL_ENABLED=true``.

Django requests, Celery tasks and psycopg queries are instrumented. Spans go over OTLP/HTTP
when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (Jaeger, Tempo and the OTel collector all accept
it), else to the console in DEBUG. Off by default, so tests and the embedded mode pay nothing.
"""

import os

from django.conf import settings
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

_INSTRUMENTORS = (DjangoInstrumentor, CeleryInstrumentor, PsycopgInstrumentor)


def default_exporter() -> SpanExporter | None:
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    return ConsoleSpanExporter() if settings.DEBUG else None


def build_provider(exporter: SpanExporter | None, processor_class=BatchSpanProcessor) -> TracerProvider:
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "shop")})
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(processor_class(exporter))
    return provider


def instrument(provider: TracerProvider) -> None:
    for instrumentor in _INSTRUMENTORS:
        instrumentor().instrument(tracer_provider=provider)


def uninstrument() -> None:
    for instrumentor in _INSTRUMENTORS:
        instrumentor().uninstrument()


def configure() -> None:
    if not settings.OTEL_ENABLED:
        return
    provider = build_provider(default_exporter())
    trace.set_tracer_provider(provider)
    instrument(provider)
