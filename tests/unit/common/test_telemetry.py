"""Tracing costs little: sampling from the standard variables, decided once per conversation; SQL spans opt-in."""

from types import SimpleNamespace

import pytest
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

from relais.common import telemetry
from relais.common.config import ConfigError, check_environment


@pytest.fixture
def environ(monkeypatch):
    for name in (
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "RELAIS_TRACE_SQL",
        "OTEL_SDK_DISABLED",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_default_samples_a_share_of_conversations_at_their_root(environ):
    sampler = telemetry.make_provider("intake").sampler
    assert isinstance(sampler, ParentBased)
    assert f"TraceIdRatioBased{{{telemetry.DEFAULT_SAMPLE_RATIO}}}" in sampler.get_description()


def test_the_ratio_alone_sets_the_default_samplers_share(environ):
    environ.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    sampler = telemetry.make_provider("intake").sampler
    assert isinstance(sampler, ParentBased) and "TraceIdRatioBased{0.25}" in sampler.get_description()


@pytest.mark.parametrize(
    "name, arg, expected",
    [
        ("always_on", "", "AlwaysOnSampler"),
        ("parentbased_always_on", "", "ParentBased{root:AlwaysOnSampler"),
        ("parentbased_traceidratio", "0.5", "ParentBased{root:TraceIdRatioBased{0.5}"),
        ("traceidratio", "0.02", "TraceIdRatioBased{0.02}"),
    ],
)
def test_the_standard_variables_are_not_overridden(environ, name, arg, expected):
    environ.setenv("OTEL_TRACES_SAMPLER", name)
    if arg:
        environ.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    assert telemetry.make_provider("bot").sampler.get_description().startswith(expected)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("OTEL_TRACES_SAMPLER", "sometimes", "OTEL_TRACES_SAMPLER: expected one of always_on"),
        ("OTEL_TRACES_SAMPLER_ARG", "10%", "OTEL_TRACES_SAMPLER_ARG: expected a fraction from 0 to 1"),
        ("RELAIS_TRACE_SQL", "yes", "RELAIS_TRACE_SQL: expected one of on, off"),
    ],
)
def test_a_bad_tracing_setting_is_refused_in_one_line(name, value, message):
    with pytest.raises(ConfigError, match=message):
        check_environment({name: value})


def test_sql_statements_get_spans_only_when_asked(environ):
    instrumentor = AsyncPGInstrumentor()
    provider = telemetry.make_provider("bot")
    try:
        assert telemetry.instrument_sql(provider) is False
        assert not instrumentor.is_instrumented_by_opentelemetry
        environ.setenv("RELAIS_TRACE_SQL", "off")
        assert telemetry.instrument_sql(provider) is False
        environ.setenv("RELAIS_TRACE_SQL", "on")
        assert telemetry.instrument_sql(provider) is True
        assert instrumentor.is_instrumented_by_opentelemetry
    finally:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()


def record(topic: str, headers=None):
    return SimpleNamespace(topic=topic, partition=3, offset=42, headers=headers or [])


def traced_conversation(environ, intake_sampler):
    """A conversation's first turn through intake (root, traceparent stored), its second turn parented on the
    stored traceparent, then the classifier's span from the Kafka headers intake sent (the classifier samples
    every root: only the parent's flag can spare it): the traceparents and the spans exported."""
    exporter = InMemorySpanExporter()

    def use(sampler):
        provider = TracerProvider(sampler=sampler)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        environ.setattr(telemetry, "tracer", lambda: provider.get_tracer("relais"))

    use(intake_sampler)
    with telemetry.consume_span(
        "intake turn", record("contact-events"), parent=None, **{"relais.conversation_id": "c1"}
    ):
        stored = telemetry.current_traceparent()
    parent = telemetry.context_from_traceparent(stored)
    with telemetry.consume_span(
        "intake turn", record("contact-events"), parent=parent, **{"relais.conversation_id": "c1"}
    ):
        headers = telemetry.inject_headers()
    use(ParentBased(ALWAYS_ON))
    with telemetry.consume_span(
        "classifier classify", record("turns", headers), parent=None, **{"relais.conversation_id": "c1"}
    ):
        pass
    return stored, headers, exporter.get_finished_spans()


def sampled(traceparent: str | bytes) -> bool:
    """The W3C sampled bit of a traceparent's flags (other bits, e.g. "random", may be set)."""
    flags = (traceparent.decode() if isinstance(traceparent, bytes) else traceparent).rsplit("-", 1)[1]
    return bool(int(flags, 16) & 1)


def test_a_sampled_conversation_is_whole_and_one_trace(environ):
    stored, headers, spans = traced_conversation(environ, ParentBased(ALWAYS_ON))
    assert sampled(stored), "the sampled flag is stored with the conversation"
    assert sampled(dict(headers)["traceparent"]), "and travels to the next service"
    assert [s.name for s in spans] == ["intake turn", "intake turn", "classifier classify"]
    assert len({s.context.trace_id for s in spans}) == 1
    root, second, classify = spans
    assert root.parent is None and second.parent.span_id == root.context.span_id
    assert classify.parent.span_id == second.context.span_id


def test_an_unsampled_conversation_exports_nothing_downstream(environ):
    stored, headers, spans = traced_conversation(environ, ParentBased(TraceIdRatioBased(0)))
    assert stored and not sampled(stored), "the decision not to sample is stored with the conversation"
    assert not sampled(dict(headers)["traceparent"]), "and travels to the next service"
    assert spans == ()


def test_a_consume_span_carries_few_attributes(environ):
    _, _, spans = traced_conversation(environ, ParentBased(ALWAYS_ON))
    assert dict(spans[-1].attributes) == {
        "messaging.destination.name": "turns",
        "messaging.kafka.destination.partition": 3,
        "messaging.kafka.message.offset": 42,
        "relais.conversation_id": "c1",
    }
