"""OpenTelemetry tracing, opt-in with ``OTEL_ENABLED=true``: one trace per order.

Django requests, Celery tasks and psycopg queries are instrumented. The W3C trace context
of the span that publishes an event travels inside the event envelope (``metadata``:
``traceparent``/``tracestate``), so a delivery continues the publisher's trace whichever
path carried it (the on-commit fast path, the beat sweeper, a replay); the Celery task span
that carried it is linked. Spans go over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is
set (the compose collector, Jaeger, Tempo), to stdout with ``OTEL_TRACES_EXPORTER=console``,
else nowhere (ids still reach the log lines). Off by default:
the API's no-op tracer costs next to nothing on the hot path.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.utils.module_loading import import_string
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_INSTRUMENTORS = (DjangoInstrumentor, CeleryInstrumentor, PsycopgInstrumentor)
_propagator = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None


def default_exporter() -> SpanExporter | None:
    if getattr(settings, "OTEL_EXPORTER_FACTORY", None):
        return import_string(settings.OTEL_EXPORTER_FACTORY)()
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    return ConsoleSpanExporter() if os.environ.get("OTEL_TRACES_EXPORTER") == "console" else None


def build_provider(exporter: SpanExporter | None, processor_class=BatchSpanProcessor) -> TracerProvider:
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "shop")})
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(processor_class(exporter))
    return provider


def instrument(provider: TracerProvider) -> None:
    global _provider
    _provider = provider
    for instrumentor in _INSTRUMENTORS:
        instrumentor().instrument(tracer_provider=provider)


def uninstrument() -> None:
    global _provider
    _provider = None
    for instrumentor in _INSTRUMENTORS:
        instrumentor().uninstrument()


def configure() -> None:
    if not settings.OTEL_ENABLED:
        return
    exporter = default_exporter()
    processor = BatchSpanProcessor
    if getattr(settings, "OTEL_EXPORTER_FACTORY", None):
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        processor = SimpleSpanProcessor  # a test's file exporter: written before the task returns
    provider = build_provider(exporter, processor)
    trace.set_tracer_provider(provider)
    instrument(provider)


def tracer(name: str = "shop") -> trace.Tracer:
    """The instrumented provider's tracer (the global one otherwise, a no-op when tracing is off)."""
    return _provider.get_tracer(name) if _provider is not None else trace.get_tracer(name)


def enabled() -> bool:
    """Whether a provider records spans: ours, or a global one (the ``opentelemetry-instrument``
    launcher sets it). Off, ``span`` skips even the API's no-op span, which still switched the
    context twice per span, several times per delivery; callers skip costly attributes."""
    return _provider is not None or not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


@contextmanager
def span(
    name: str, kind: SpanKind = SpanKind.INTERNAL, *, error_messages: bool = True, **attributes
) -> Iterator[trace.Span]:
    """``error_messages=False``: a failure is recorded by its class (and SQLSTATE, for a database
    error) only, for spans whose errors quote data that must not leave (PostgreSQL's messages
    quote the failing statement and row, values included)."""
    if not enabled():
        yield trace.INVALID_SPAN
        return
    with tracer().start_as_current_span(
        name, kind=kind, attributes=attributes, record_exception=error_messages, set_status_on_exception=error_messages
    ) as current:
        try:
            yield current
        except BaseException as exc:
            if not error_messages:
                code = getattr(exc, "sqlstate", None)
                current.set_status(Status(StatusCode.ERROR, type(exc).__name__ + (f" ({code})" if code else "")))
            raise


def context_for_envelope() -> dict[str, str] | None:
    """The current span's W3C trace context (``traceparent``, ``tracestate``), or None without one."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier or None


@contextmanager
def delivery_span(name: str, metadata: dict | None, **attributes) -> Iterator[None]:
    """Handle a delivery as a child of the publisher's span, linked to the span that carried it."""
    if not enabled() and not metadata:  # a publisher's trace context still passes through an untraced hop
        yield
        return
    carried_by = trace.get_current_span().get_span_context()
    links = [Link(carried_by)] if carried_by.is_valid else []
    parent = _propagator.extract(metadata) if metadata else None
    token = otel_context.attach(parent) if parent is not None else None
    try:
        with tracer().start_as_current_span(name, kind=SpanKind.CONSUMER, links=links, attributes=attributes):
            yield
    finally:
        if token is not None:
            otel_context.detach(token)


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex for log lines, or None outside a recorded span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
