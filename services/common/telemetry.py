"""OpenTelemetry for every service: one trace per conversation across Kafka hops and gRPC calls.

Exporting is configured by the standard OTEL_* variables: OTLP when OTEL_EXPORTER_OTLP_ENDPOINT
(or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, nothing otherwise. Kafka trace context travels in
W3C `traceparent` headers that we inject and extract ourselves: the aiokafka instrumentation does
not make consumer spans current, so children would lose their parent.

Cost: a conversation is sampled once, at its root (intake's first span), and every later span follows the
parent's sampled flag, which travels in the stored and propagated `traceparent`. OTEL_TRACES_SAMPLER and
OTEL_TRACES_SAMPLER_ARG are read by the SDK as usual; unset, the default is `parentbased_traceidratio` at
DEFAULT_SAMPLE_RATIO. A span per SQL statement (asyncpg instrumentation) only with RELAIS_TRACE_SQL=on.
"""

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from relais.common import logs
from relais.common.config import setting

# Share of conversations traced when OTEL_TRACES_SAMPLER is unset (docs/architecture.md, "Telemetry": measured cost).
DEFAULT_SAMPLE_RATIO = 0.1

_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None


def default_sampler() -> Sampler | None:
    """Our default when OTEL_TRACES_SAMPLER is unset; None (the SDK reads the variables itself) when it is set."""
    if os.environ.get("OTEL_TRACES_SAMPLER", "").strip():
        return None
    return ParentBased(TraceIdRatioBased(setting("OTEL_TRACES_SAMPLER_ARG", DEFAULT_SAMPLE_RATIO)))


def trace_sql() -> bool:
    return setting("RELAIS_TRACE_SQL", "off") == "on"


def make_provider(service: str) -> TracerProvider:
    name = os.environ.get("OTEL_SERVICE_NAME") or f"relais-{service}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}), sampler=default_sampler())
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint and os.environ.get("OTEL_TRACES_EXPORTER", "otlp") != "none":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def instrument_sql(provider: TracerProvider) -> bool:
    """A span per SQL statement, when RELAIS_TRACE_SQL=on: a span per statement costs more than the statement."""
    if not trace_sql():
        return False
    try:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        AsyncPGInstrumentor().instrument(tracer_provider=provider)
    except Exception:  # instrumentation is a nicety; never a reason not to start
        return False
    return True


def setup(service: str) -> TracerProvider:
    """Installs the tracer provider once per process."""
    global _provider
    if _provider is not None:
        return _provider
    _provider = make_provider(service)
    trace.set_tracer_provider(_provider)
    instrument_sql(_provider)
    return _provider


def shutdown() -> None:
    if _provider is not None:
        _provider.force_flush(5000)
        _provider.shutdown()


def tracer() -> trace.Tracer:
    """Ours, once the provider is installed (asked of the API at every span, it cost 5-9 µs a span)."""
    global _tracer
    if _tracer is None:
        if _provider is None:
            return trace.get_tracer("relais")
        _tracer = _provider.get_tracer("relais")
    return _tracer


Headers = list[tuple[str, bytes]]


def _parent_based() -> bool:
    """Whether a span whose parent is not sampled is never sampled (our default, and the SDK's parentbased_*)."""
    name = os.environ.get("OTEL_TRACES_SAMPLER", "").strip()
    return not name or name.startswith("parentbased_")


PARENT_BASED = _parent_based()


def _remote(headers: Iterable[tuple[str, bytes]] | None) -> SpanContext | None:
    """The span context of a `traceparent` header, read without the propagators (a hot path)."""
    for key, value in headers or ():
        if key == "traceparent" and isinstance(value, bytes):
            return _parse_traceparent(value.decode("ascii", "replace"))
    return None


def _parse_traceparent(value: str) -> SpanContext | None:
    parts = value.strip().split("-")
    if len(parts) < 4 or len(parts[1]) != 32 or len(parts[2]) != 16 or len(parts[3]) != 2:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & 1))


def _unsampled(span_context: SpanContext | None) -> bool:
    return PARENT_BASED and span_context is not None and span_context.is_valid and not span_context.trace_flags.sampled


def inject_headers(headers: Headers | None = None, ctx: context.Context | None = None) -> Headers:
    """Kafka headers carrying the current (or given) trace context."""
    current = trace.get_current_span(ctx).get_span_context()
    if _unsampled(current):  # written by hand: the propagators cost more than the record's other work
        kept = [(k, v) for k, v in (headers or []) if k != "traceparent"]
        return kept + [("traceparent", f"00-{current.trace_id:032x}-{current.span_id:016x}-00".encode())]
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    kept = [(k, v) for k, v in (headers or []) if k not in carrier]
    return kept + [(k, v.encode()) for k, v in carrier.items()]


def traced(record, headers: Headers | None = None, ctx: context.Context | None = None):
    """`record` (a reply to the customer, say) carrying its conversation's trace context, so that whoever reads it
    (a channel) joins that trace: `headers` already injected for the turn, else those of `ctx` (e.g.
    context_from_traceparent of a stored traceparent), else the current context's."""
    record.headers = list(record.headers) + headers if headers is not None else inject_headers(record.headers, ctx)
    return record


def extract_headers(headers: Iterable[tuple[str, bytes]] | None) -> context.Context:
    carrier = {k: v.decode("utf-8", "replace") for k, v in (headers or []) if isinstance(v, bytes)}
    return propagate.extract(carrier)


def context_from_traceparent(traceparent: str | None) -> context.Context | None:
    remote = _parse_traceparent(traceparent) if traceparent else None
    return trace.set_span_in_context(NonRecordingSpan(remote)) if remote is not None and remote.is_valid else None


def current_traceparent() -> str:
    current = trace.get_current_span().get_span_context()
    if not current.is_valid:
        return ""
    return f"00-{current.trace_id:032x}-{current.span_id:016x}-{int(current.trace_flags):02x}"


@contextmanager
def consume_span(name: str, record, parent: context.Context | None = None, **attributes) -> Iterator[trace.Span]:
    """A CONSUMER span for one Kafka record, child of `parent` or of the record's trace headers. In a conversation
    not sampled, no span is made: its context is current, so that what is sent or called carries it on. The lines
    logged meanwhile name the record's conversation (relais.conversation_id) and carry the span's trace id."""
    with logs.about(attributes.get("relais.conversation_id")), _record_span(name, record, parent, attributes) as span:
        yield span


@contextmanager
def _record_span(name: str, record, parent: context.Context | None, attributes: dict) -> Iterator[trace.Span]:
    remote = _remote(record.headers) if parent is None else trace.get_current_span(parent).get_span_context()
    if remote is not None and _unsampled(remote):
        span: trace.Span = NonRecordingSpan(remote)
        token = context.attach(trace.set_span_in_context(span))
        try:
            yield span
        finally:
            context.detach(token)
        return
    upstream = extract_headers(record.headers)
    links = []
    if parent is not None:
        # Parented elsewhere (the conversation's trace): keep the producer's span as a link.
        producer = trace.get_current_span(upstream).get_span_context()
        links = [Link(producer)] if producer.is_valid else []
    # Few attributes: each one is copied, checked and exported per record.
    attrs = {
        "messaging.destination.name": record.topic,
        "messaging.kafka.destination.partition": record.partition,
        "messaging.kafka.message.offset": record.offset,
        **attributes,
    }
    with tracer().start_as_current_span(
        name, context=parent or upstream, kind=SpanKind.CONSUMER, attributes=attrs, links=links
    ) as span:
        yield span


def consumed(name: str, record, **attributes) -> None:
    """A CONSUMER span saying that `record` was read and kept, where the work is done for a whole batch at once."""
    with consume_span(name, record, **attributes):
        pass
