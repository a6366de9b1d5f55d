"""Hostile input against the intake parser (`cloudevents.parse_contact_event`), property-based.

Whatever a Kafka record holds — arbitrary bytes, arbitrary JSON, a valid event with one field dropped,
replaced or of the wrong type, arbitrary headers (not UTF-8 included), binary mode with arbitrary protobuf
bytes — the parser either returns a ContactEvent that the services can use as it is, or raises BadInput
with a reason. Any other exception would reach the consume loop as a defect ("unprocessable").
"""

import json
import os
from datetime import timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, example, given, settings, strategies as st

from relais.common import cloudevents
from relais.common.bus import BadInput
from relais.common.pb import conversation_pb2 as pb

LIMIT = 4000  # RELAIS_MAX_TEXT_CHARS's default
SMALL = 40  # a limit hypothesis can reach with generated text
STRUCTURED = [("content-type", b"application/cloudevents+json")]
# RELAIS_FUZZ_EXAMPLES=5000 for a longer hunt; the default keeps the file within a few seconds.
FAST = settings(
    max_examples=int(os.environ.get("RELAIS_FUZZ_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Text as hostile as JSON allows: lone surrogates (JSON's "\ud800" escapes), NUL, control characters, any plane.
any_char = st.characters(exclude_categories=())
any_text = st.text(any_char, max_size=30)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False)
    | any_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)


def parse(value, headers, limit=LIMIT):
    """Parses and checks the one property: a usable event, or BadInput with a reason."""
    try:
        event = cloudevents.parse_contact_event(value, headers, limit)
    except BadInput as bad:
        assert str(bad).strip(), "BadInput without a reason"
        return None
    check_invariants(event, limit)
    return event


def check_invariants(event: cloudevents.ContactEvent, limit: int) -> None:
    for name in ("id", "source", "subject"):
        value = getattr(event, name)
        assert isinstance(value, str) and value.strip(), name
        assert "\x00" not in value and value.encode("utf-8")  # a database key and a Kafka key
    assert event.traceparent is None or isinstance(event.traceparent, str)
    event.event_key.encode("utf-8")
    if event.type == cloudevents.CONTACT_MESSAGE:
        message = event.message
        assert event.survey is None and message is not None
        assert 1 <= len(message.text) <= limit and message.text.strip()
        assert "\x00" not in message.text
        assert message.channel in cloudevents.CHANNEL_NAMES
        assert message.customer.id.strip() and "\x00" not in message.customer.id
        assert not message.customer.language or cloudevents.LANGUAGE_TAG.match(message.customer.language)
        assert "\x00" not in message.customer.tier
        message.sent_at.ToDatetime(tzinfo=timezone.utc)  # intake stores it
        message.SerializeToString()
    else:
        assert event.type == cloudevents.CONTACT_SURVEY
        survey = event.survey
        assert event.message is None and survey is not None
        low, high = cloudevents.SURVEY_RANGES[survey.scale or pb.SURVEY_SCALE_CSAT]
        assert low <= survey.score <= high
        assert len(survey.comment) <= limit and "\x00" not in survey.comment
        survey.answered_at.ToDatetime(tzinfo=timezone.utc)
        survey.SerializeToString()


def message_event(**overrides) -> dict:
    doc = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "urn:shop:chat",
        "type": cloudevents.CONTACT_MESSAGE,
        "subject": "conv-42",
        "time": "2026-11-26T10:00:00Z",
        "data": {
            "channel": "chat",
            "customer": {"id": "c-1", "language": "fr", "tier": "vip"},
            "text": "Bonjour",
            "sent_at": "2026-11-26T10:00:00Z",
        },
    }
    return doc | overrides


def survey_event(**overrides) -> dict:
    doc = {
        "specversion": "1.0",
        "id": "evt-2",
        "source": "urn:shop:chat",
        "type": cloudevents.CONTACT_SURVEY,
        "subject": "conv-42",
        "time": "2026-11-26T10:00:00Z",
        "data": {
            "score": 4,
            "scale": "csat",
            "comment": "merci",
            "customer": {"id": "c-1"},
            "answered_at": "2026-11-26T10:05:00Z",
        },
    }
    return doc | overrides


def encode(doc) -> bytes:
    # ensure_ascii: lone surrogates travel as "\udXXX" escapes, as a hostile sender would write them.
    return json.dumps(doc, ensure_ascii=True).encode()


def binary_headers(event_type=cloudevents.CONTACT_MESSAGE, content_type=b"application/protobuf", **overrides):
    attrs = {
        "ce_specversion": b"1.0",
        "ce_id": b"7",
        "ce_source": b"urn:ivr",
        "ce_subject": b"call-1",
        "ce_type": event_type.encode(),
        "content-type": content_type,
    } | overrides
    return [(k, v) for k, v in attrs.items() if v is not None]


# --- arbitrary bytes and documents ---


@FAST
@given(
    st.binary(max_size=300),
    st.sampled_from([None, [], STRUCTURED, binary_headers(), binary_headers(cloudevents.CONTACT_SURVEY)]),
)
@example(b"", STRUCTURED)
@example(b"\xff\xfe{", STRUCTURED)
@example(b"[" * 100_000, STRUCTURED)  # nesting deeper than the JSON decoder's recursion limit
@example(b'{"a": ' + b"9" * 5000 + b"}", STRUCTURED)  # an integer beyond Python's 4,300-digit conversion limit
def test_arbitrary_bytes_never_crash_the_parser(value, headers):
    parse(value, headers)


@FAST
@given(json_values)
def test_arbitrary_json_documents_are_rejected_with_a_reason(doc):
    assert parse(encode(doc), STRUCTURED) is None or isinstance(doc, dict)


# --- a valid event, one field mutated ---

MESSAGE_PATHS = [
    ("specversion",),
    ("id",),
    ("source",),
    ("type",),
    ("subject",),
    ("time",),
    ("traceparent",),
    ("data",),
    ("data", "channel"),
    ("data", "customer"),
    ("data", "text"),
    ("data", "sent_at"),
    ("data", "customer", "id"),
    ("data", "customer", "language"),
    ("data", "customer", "tier"),
]
SURVEY_PATHS = [
    ("type",),
    ("subject",),
    ("time",),
    ("data",),
    ("data", "score"),
    ("data", "scale"),
    ("data", "comment"),
    ("data", "customer"),
    ("data", "answered_at"),
    ("data", "customer", "id"),
]
TRICKY = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "\ud800",
        "x" * (SMALL + 1),
        "x" * 300,
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00",
        "not a date",
        "fax",
        10**30,
        -1,
        0,
        11,
        2**31,
        True,
        [],
        {},
        ["chat"],
        {"id": "c"},
        1.5,
        None,
    ]
)


def mutate(doc: dict, path: tuple, action: str, value) -> dict:
    doc = json.loads(json.dumps(doc))
    target = doc
    for name in path[:-1]:
        target = target[name]
    if action == "drop":
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return doc


@FAST
@given(st.sampled_from(["message", "survey"]), st.data(), st.sampled_from(["drop", "replace", "tricky"]), json_values)
def test_a_valid_event_with_one_field_dropped_replaced_or_retyped_is_accepted_or_rejected_with_a_reason(
    kind, data, action, value
):
    base, paths = (message_event(), MESSAGE_PATHS) if kind == "message" else (survey_event(), SURVEY_PATHS)
    path = data.draw(st.sampled_from(paths))
    if action == "tricky":
        value = data.draw(TRICKY)
    parse(encode(mutate(base, path, action, value)), STRUCTURED, SMALL)


@FAST
@given(st.lists(st.tuples(st.sampled_from(MESSAGE_PATHS), TRICKY | json_values), min_size=2, max_size=5))
def test_several_fields_mutated_at_once_never_crash(mutations):
    doc = message_event()
    for path, value in mutations:
        try:
            doc = mutate(doc, path, "replace", value)
        except (TypeError, KeyError, IndexError):  # a parent was replaced by a scalar
            pass
    parse(encode(doc), STRUCTURED, SMALL)


# --- valid events stay valid ---

clean_text = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=SMALL).filter(str.strip)


@FAST
@given(clean_text, st.sampled_from(sorted(cloudevents.CHANNELS)), clean_text, st.sampled_from(["binary", "structured"]))
def test_any_valid_message_is_accepted_with_its_text(text, channel, customer_id, mode):
    if mode == "structured":
        doc = message_event()
        doc["data"] |= {"text": text, "channel": channel, "customer": {"id": customer_id}}
        event = parse(encode(doc), STRUCTURED, SMALL)
    else:
        message = pb.ContactMessage(
            channel=cloudevents.CHANNELS[channel], customer=pb.Customer(id=customer_id), text=text
        )
        event = parse(message.SerializeToString(), binary_headers(), SMALL)
    assert event is not None and event.message.text == text and event.message.customer.id == customer_id


def test_the_text_limit_is_inclusive_and_counted_in_characters():
    def text_of(text):
        doc = message_event()
        doc["data"]["text"] = text
        return encode(doc)

    assert parse(text_of("é" * SMALL), STRUCTURED, SMALL).message.text == "é" * SMALL
    for text in ("x" * (SMALL + 1), "é" * (SMALL + 1)):
        with pytest.raises(BadInput, match=f"data.text is {SMALL + 1} characters; the limit is {SMALL}"):
            cloudevents.parse_contact_event(text_of(text), STRUCTURED, SMALL)
    for text, reason in (
        ("", "data.text is empty"),
        ("  \n\t", "data.text is empty"),
        ("a\x00b", "NUL"),
        ("\ud800", "lone surrogate"),
    ):
        with pytest.raises(BadInput, match=reason):
            cloudevents.parse_contact_event(text_of(text), STRUCTURED, SMALL)


# --- headers ---

header_keys = st.sampled_from(
    [
        "content-type",
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_subject",
        "ce_time",
        "ce_traceparent",
        "traceparent",
        "CE_TYPE",
        "Content-Type",
    ]
) | st.text(max_size=12)
header_values = st.binary(max_size=40) | st.sampled_from(
    [
        b"1.0",
        b"application/protobuf",
        b"application/cloudevents+json",
        b"\xff\xfe",
        b"\xc3",
        b"\x00",
        cloudevents.CONTACT_MESSAGE.encode(),
        cloudevents.CONTACT_SURVEY.encode(),
        b"not-a-time",
        b"0001-01-01T00:00:00+01:00",
    ]
)


@FAST
@given(st.lists(st.tuples(header_keys, header_values), max_size=8), st.binary(max_size=80))
def test_arbitrary_headers_never_crash_the_parser(headers, value):
    parse(value, headers)
    parse(encode(message_event()), headers)


@FAST
@given(
    st.sampled_from(["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "content-type"]),
    header_values,
    st.sampled_from([cloudevents.CONTACT_MESSAGE, cloudevents.CONTACT_SURVEY]),
)
def test_one_binary_header_replaced_never_crashes(name, value, event_type):
    data = (
        pb.ContactMessage(channel=pb.CHANNEL_SMS, customer=pb.Customer(id="c"), text="hi")
        if event_type == cloudevents.CONTACT_MESSAGE
        else pb.ContactSurvey(score=3)
    )
    parse(data.SerializeToString(), binary_headers(event_type, **{name: value}))


def test_a_header_that_is_not_utf8_is_a_clear_reason():
    with pytest.raises(BadInput, match="header is not valid UTF-8"):
        cloudevents.parse_contact_event(b"", binary_headers(ce_subject=b"\xff\xfeconv"))


# --- binary mode: arbitrary protobuf ---


@FAST
@given(st.binary(max_size=200), st.sampled_from([cloudevents.CONTACT_MESSAGE, cloudevents.CONTACT_SURVEY]))
@example(b"\x08\x99garbage", cloudevents.CONTACT_MESSAGE)
@example(b"\x18\x07\x08\x03", cloudevents.CONTACT_SURVEY)  # scale 7: an enum value nobody knows
def test_arbitrary_protobuf_bytes_never_crash_the_parser(value, event_type):
    parse(value, binary_headers(event_type))


timestamps = st.builds(
    Timestamp,
    seconds=st.integers(-(2**63), 2**63 - 1) | st.integers(-62135596800, 253402300799),
    nanos=st.integers(-(2**31), 2**31 - 1) | st.just(0),
)
customers = st.builds(pb.Customer, id=st.text(max_size=8), language=st.text(max_size=8), tier=st.text(max_size=8))


@FAST
@given(st.integers(-(2**31), 2**31 - 1), customers, st.text(max_size=SMALL + 2), st.none() | timestamps)
def test_any_contact_message_protobuf_is_accepted_or_rejected_with_a_reason(channel, customer, text, sent_at):
    message = pb.ContactMessage(channel=channel, customer=customer, text=text)
    if sent_at is not None:
        message.sent_at.CopyFrom(sent_at)
    parse(message.SerializeToString(), binary_headers(), SMALL)


@FAST
@given(
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**31), 2**31 - 1),
    st.text(max_size=SMALL + 2),
    customers,
    st.none() | timestamps,
)
@example(3, 7, "", pb.Customer(), None)
def test_any_survey_protobuf_is_accepted_or_rejected_with_a_reason(score, scale, comment, customer, answered_at):
    survey = pb.ContactSurvey(score=score, scale=scale, comment=comment, customer=customer)
    if answered_at is not None:
        survey.answered_at.CopyFrom(answered_at)
    parse(survey.SerializeToString(), binary_headers(cloudevents.CONTACT_SURVEY), SMALL)
