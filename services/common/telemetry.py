"""OpenTelemetry for every service: one trace per conversation across Kafka hops and gRPC calls.

Exporting is configured by the standard OTEL_* variables: OTLP when OTEL_EXPORTER_OTLP_ENDPOINT
(or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, nothing otherwise. Kafka trace context travels in
W3C `traceparent` headers that we inject and extract ourselves: the aiokafka instrumentation does
not make consumer spans current, so children would lose their parent.
"""

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind

_provider: TracerProvider | None = None


def setup(service: str) -> TracerProvider:
    """Installs the tracer provider once per process."""
    global _provider
    if _provider is not None:
        return _provider
    name = os.environ.get("OTEL_SERVICE_NAME") or f"relais-{service}"
    _provider = TracerProvider(resource=Resource.create({"service.name": name}))
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint and os.environ.get("OTEL_TRACES_EXPORTER", "otlp") != "none":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(_provider)
    try:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        AsyncPGInstrumentor().instrument(tracer_provider=_provider)
    except Exception:  # instrumentation is a nicety; never a reason not to start
        pass
    return _provider


def shutdown() -> None:
    if _provider is not None:
        _provider.force_flush(5000)
        _provider.shutdown()


def tracer() -> trace.Tracer:
    return trace.get_tracer("relais")


Headers = list[tuple[str, bytes]]


def inject_headers(headers: Headers | None = None, ctx: context.Context | None = None) -> Headers:
    """Kafka headers carrying the current (or given) trace context."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    kept = [(k, v) for k, v in (headers or []) if k not in carrier]
    return kept + [(k, v.encode()) for k, v in carrier.items()]


def extract_headers(headers: Iterable[tuple[str, bytes]] | None) -> context.Context:
    carrier = {k: v.decode("utf-8", "replace") for k, v in (headers or []) if isinstance(v, bytes)}
    return propagate.extract(carrier)


def context_from_traceparent(traceparent: str | None) -> context.Context | None:
    if not traceparent:
        return None
    ctx = propagate.extract({"traceparent": traceparent})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def current_traceparent() -> str:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


@contextmanager
def consume_span(name: str, record, parent: context.Context | None = None, **attributes) -> Iterator[trace.Span]:
    """A CONSUMER span for one Kafka record, child of `parent` or of the record's trace headers."""
    upstream = extract_headers(record.headers)
    links = []
    if parent is not None:
        # Parented elsewhere (the conversation's trace): keep the producer's span as a link.
        producer = trace.get_current_span(upstream).get_span_context()
        links = [Link(producer)] if producer.is_valid else []
    attrs = {
        "messaging.system": "kafka",
        "messaging.destination.name": record.topic,
        "messaging.kafka.destination.partition": record.partition,
        "messaging.kafka.message.offset": record.offset,
        **attributes,
    }
    with tracer().start_as_current_span(
        name, context=parent or upstream, kind=SpanKind.CONSUMER, attributes=attrs, links=links
    ) as span:
        yield span
