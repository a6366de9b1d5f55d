"""Service logs (relais.common.logs): with RELAIS_LOG_FORMAT=json one JSON object per line naming the conversation or
event and the current span's trace, the text lines of old otherwise; replies carry the conversation's traceparent."""

import io
import json
import logging
import re
import sys
import warnings
from types import SimpleNamespace

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from relais.common import bus, cloudevents, logs, runtime, telemetry, topics
from relais.common.config import ConfigError, check_environment

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SPAN_ID = 0xB7AD6B7169203331


@pytest.fixture
def written():
    """A logger writing JSON lines into a buffer; `lines()` parses them (each must be a whole JSON object)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logs.JsonFormatter("routing"))
    logger = logging.getLogger("relais.test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False

    def lines() -> list[dict]:
        text = buffer.getvalue()
        assert text.endswith("\n")
        return [json.loads(line) for line in text.splitlines()]

    yield SimpleNamespace(logger=logger, handler=handler, lines=lines)
    logger.removeHandler(handler)


def kafka_record(topic=topics.HANDOFFS, key=b"conv-1", headers=()):
    return SimpleNamespace(topic=topic, partition=2, offset=7, key=key, value=b"\x00bad", headers=list(headers))


def test_a_json_line_has_time_level_service_logger_and_message(written):
    written.logger.warning("queue %s is %d long", "fr", 3)
    [line] = written.lines()
    assert RFC3339_UTC.match(line.pop("time"))
    assert line == {
        "level": "WARNING",
        "service": "routing",
        "logger": "relais.test.logs",
        "message": "queue fr is 3 long",
    }


def test_the_conversation_comes_from_the_context_or_from_extra(written):
    with logs.about("conv-a", event_id="evt-1"):
        written.logger.info("in conversation a")
        written.logger.info("about b", extra={"conversation_id": "conv-b", "task_id": "task-9"})
    written.logger.info("after")
    inside, explicit, after = written.lines()
    assert (inside["conversation_id"], inside["event_id"]) == ("conv-a", "evt-1")
    assert (explicit["conversation_id"], explicit["task_id"]) == ("conv-b", "task-9")
    assert "conversation_id" not in after and "event_id" not in after


def test_a_line_carries_the_current_span_trace_and_span_ids_in_hex(written):
    tracer = TracerProvider(sampler=ALWAYS_ON).get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        written.logger.info("inside a span")
    written.logger.info("outside")
    inside, outside = written.lines()
    context = span.get_span_context()
    assert (inside["trace_id"], inside["span_id"]) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert re.fullmatch(r"[0-9a-f]{32}", inside["trace_id"]) and re.fullmatch(r"[0-9a-f]{16}", inside["span_id"])
    assert "trace_id" not in outside and "span_id" not in outside


def test_a_record_handled_in_an_unsampled_conversation_names_it_and_its_trace(written):
    """consume_span makes no span when the conversation is not sampled; its lines still lead to the trace id."""
    traceparent = f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-00".encode()
    record = kafka_record(headers=[("traceparent", traceparent)])
    with telemetry.consume_span("routing queue", record, parent=None, **{"relais.conversation_id": "conv-7"}):
        written.logger.info("queued")
    written.logger.info("next record")
    queued, after = written.lines()
    assert (queued["conversation_id"], queued["trace_id"], queued["span_id"]) == (
        "conv-7",
        f"{TRACE_ID:032x}",
        f"{SPAN_ID:016x}",
    )
    assert "conversation_id" not in after and "trace_id" not in after


def test_an_exception_is_one_field_of_one_line(written):
    empty: dict[str, int] = {}
    try:
        empty["missing"]
    except KeyError:
        written.logger.exception("tick failed")
    text = written.handler.stream.getvalue()
    assert text.count("\n") == 1  # the traceback's newlines are escaped inside the JSON string
    [line] = written.lines()
    assert line["message"] == "tick failed" and line["exception_type"] == "KeyError"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert 'empty["missing"]' in line["exception"] and line["exception"].rstrip().endswith("KeyError: 'missing'")


def test_values_json_cannot_hold_are_written_as_text(written):
    written.logger.info("odd extra", extra={"since": object, "ratio": 0.5})
    [line] = written.lines()
    assert line["since"] == str(object) and line["ratio"] == 0.5


def test_a_business_event_is_one_line_with_its_ids_in_text_and_as_fields(written):
    logs.event(written.logger, "offered", agent_id="a1", conversation_id="c1", task_id="t1")
    [line] = written.lines()
    assert line["message"] == "offered agent=a1 conversation=c1 task=t1"
    assert (line["event"], line["agent_id"], line["conversation_id"], line["task_id"]) == ("offered", "a1", "c1", "t1")
    assert line["level"] == "INFO"


def test_the_text_format_is_unchanged():
    record = logging.LogRecord("relais.routing.app", logging.INFO, __file__, 1, "routing %s", ("up",), None)
    old = logging.Formatter("%(asctime)s routing %(levelname)s %(name)s: %(message)s")
    new = logs.formatter("routing", "text")
    assert new.format(record) == old.format(record)
    assert new.format(record).endswith(" routing INFO relais.routing.app: routing up")


def test_setup_writes_json_to_stderr_and_the_outage_filter_still_thins_repeated_lines(monkeypatch, capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level, sys.excepthook
    root.handlers = []
    try:
        handler = logs.setup("bot", "INFO", "json")
        outages = runtime.OutageFilter()
        handler.addFilter(outages)
        aiokafka = logging.getLogger("aiokafka.test")
        monkeypatch.setattr(aiokafka, "level", logging.WARNING)  # whatever a CLI test set on "aiokafka"
        monkeypatch.setattr(aiokafka, "disabled", False)
        for _ in range(5):
            aiokafka.error("Unable connect to node with id %s", 1)
        logging.getLogger("relais.bot").info("answered", extra={"conversation_id": "c9"})
        warnings.warn("an old call", UserWarning, stacklevel=1)
        try:
            raise RuntimeError("boom")
        except RuntimeError as error:
            sys.excepthook(RuntimeError, error, error.__traceback__)
    finally:
        logging.captureWarnings(False)
        root.handlers, _, sys.excepthook = saved
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("aiokafka.test", "ERROR"),  # the outage's first line only
        ("relais.bot", "INFO"),
        ("py.warnings", "WARNING"),
        ("bot", "CRITICAL"),
    ]
    assert lines[1]["service"] == "bot" and lines[1]["conversation_id"] == "c9"
    assert "UserWarning: an old call" in lines[2]["message"]
    assert lines[3]["message"] == "uncaught exception" and lines[3]["exception_type"] == "RuntimeError"


def test_relais_log_format_is_checked_at_start():
    check_environment({"RELAIS_LOG_FORMAT": "json"})
    check_environment({"RELAIS_LOG_FORMAT": "TEXT"})
    with pytest.raises(ConfigError, match="RELAIS_LOG_FORMAT: expected one of text, json, got 'xml'"):
        check_environment({"RELAIS_LOG_FORMAT": "xml"})


def test_a_dead_letter_line_names_the_conversation_or_the_agent(written, monkeypatch):
    monkeypatch.setattr(bus, "log", written.logger)
    bus.dead_letter_record("routing", kafka_record(key=b"conv-dead", headers=[("ce_id", b"evt-42")]), "bad protobuf")
    bus.dead_letter_record("analytics", kafka_record(topic=topics.AGENT_EVENTS, key=b"agent-3"), "bad protobuf")
    conversation, agent = written.lines()
    assert (conversation["conversation_id"], conversation["event_id"]) == ("conv-dead", "evt-42")
    assert conversation["message"] == f"dead-letter {topics.HANDOFFS}[2]@7 key 'conv-dead': bad protobuf"
    assert agent["agent_id"] == "agent-3" and "conversation_id" not in agent


def reply():
    return cloudevents.reply(cloudevents.REPLY_QUEUE, "urn:test", "r1", "conv-1", "Please wait", "en")


def traceparent_of(record) -> str:
    [value] = [v for k, v in record.headers if k == "traceparent"]
    return value.decode()


def test_a_reply_carries_its_conversation_traceparent_sampled_or_not():
    stored = f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-00"
    from_stored = telemetry.traced(reply(), ctx=telemetry.context_from_traceparent(stored))
    assert traceparent_of(from_stored) == stored  # not sampled: the flag says so
    assert ("content-type", cloudevents.STRUCTURED.encode()) in from_stored.headers

    sampled = f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"
    assert traceparent_of(telemetry.traced(reply(), [("traceparent", sampled.encode())])) == sampled  # the turn's

    tracer = TracerProvider(sampler=ALWAYS_ON).get_tracer("test")
    with tracer.start_as_current_span("routing agent reply") as span:
        current = telemetry.traced(reply())
    context = span.get_span_context()
    version, trace_id, span_id, flags = traceparent_of(current).split("-")
    assert (trace_id, span_id) == (f"{context.trace_id:032x}", f"{context.span_id:016x}") and int(flags, 16) & 1
    assert [k for k, _ in telemetry.traced(reply()).headers] == ["content-type"]  # no trace: nothing made up
