"""The public CloudEvents contract, parsed without a broker."""

import json

import pytest
from hypothesis import given, settings, strategies as st

from relais.common import cloudevents
from relais.common.bus import BadInput
from relais.common.pb import conversation_pb2 as pb

STRUCTURED = [("content-type", b"application/cloudevents+json")]


def event(**overrides) -> dict:
    doc = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "urn:shop:chat",
        "type": "relais.contact.message.v1",
        "subject": "conv-42",
        "data": {
            "channel": "chat",
            "customer": {"id": "c-1", "language": "fr", "tier": "vip"},
            "text": "Bonjour",
            "sent_at": "2026-11-26T10:00:00Z",
        },
    }
    doc.update(overrides)
    return doc


def parse(doc, headers=STRUCTURED, **kw):
    value = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return cloudevents.parse_contact_event(value, headers, **kw)


def test_structured_event_is_parsed():
    e = parse(event())
    assert (e.source, e.id, e.subject, e.event_key) == ("urn:shop:chat", "evt-1", "conv-42", "urn:shop:chat#evt-1")
    assert e.message.channel == pb.CHANNEL_CHAT and e.message.customer.tier == "vip"
    assert e.message.text == "Bonjour" and e.message.sent_at.ToJsonString() == "2026-11-26T10:00:00Z"


def test_binary_event_with_protobuf_data_is_parsed():
    message = pb.ContactMessage(channel=pb.CHANNEL_VOICE_TRANSCRIPT, customer=pb.Customer(id="c-9"), text="allo")
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"7"),
        ("ce_source", b"urn:ivr"),
        ("ce_subject", b"call-1"),
        ("ce_type", b"relais.contact.message.v1"),
        ("ce_time", b"2026-11-26T09:00:00Z"),
        ("content-type", b"application/protobuf"),
        ("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"),
    ]
    e = cloudevents.parse_contact_event(message.SerializeToString(), headers)
    assert e.message is not None and e.traceparent is not None
    assert e.subject == "call-1" and e.message.text == "allo"
    assert e.message.sent_at.ToJsonString() == "2026-11-26T09:00:00Z"  # from ce_time when data has none
    assert e.traceparent.startswith("00-111")


def test_missing_sent_at_falls_back_to_event_time():
    doc = event(time="2026-11-26T08:30:00Z")
    del doc["data"]["sent_at"]
    assert parse(doc).message.sent_at.ToJsonString() == "2026-11-26T08:30:00Z"


@pytest.mark.parametrize(
    "doc, reason",
    [
        (b"{nope", "malformed JSON"),
        (b"\xff\xfe", "not valid UTF-8"),
        (b"[1, 2]", "must be a JSON object"),
        (event(specversion="0.3"), "unsupported CloudEvents specversion '0.3'"),
        (event(id=""), "missing required CloudEvents attribute `id`"),
        (event(type="relais.contact.unknown.v1"), "unknown event type"),
        (event(subject=""), "missing `subject`"),
        (event(data="hello"), "`data` must be a JSON object"),
        (event(data={"channel": "fax", "customer": {"id": "c"}, "text": "x"}), "data.channel must be one of"),
        (event(data={"channel": "chat", "customer": {}, "text": "x"}), "data.customer.id is required"),
        (event(data={"channel": "chat", "customer": {"id": "c"}, "text": "   "}), "data.text is empty"),
        (event(data={"channel": "chat", "customer": {"id": "c"}, "text": 42}), "data.text must be a string"),
        (
            event(data={"channel": "chat", "customer": {"id": "c", "language": "français!"}, "text": "x"}),
            "not a language tag",
        ),
        (
            event(data={"channel": "chat", "customer": {"id": "c"}, "text": "x", "sent_at": "yesterday"}),
            "not an RFC 3339",
        ),
    ],
)
def test_bad_events_are_rejected_with_a_clear_reason(doc, reason):
    with pytest.raises(BadInput, match=None) as error:
        parse(doc)
    assert reason in str(error.value)


def test_oversized_text_is_rejected_with_the_limit():
    doc = event()
    doc["data"]["text"] = "a" * 5000
    with pytest.raises(BadInput, match="5000 characters; the limit is 4000"):
        parse(doc, max_text_chars=4000)


def test_bad_protobuf_in_binary_mode():
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"1"),
        ("ce_source", b"s"),
        ("ce_subject", b"c"),
        ("ce_type", b"relais.contact.message.v1"),
        ("content-type", b"application/protobuf"),
    ]
    with pytest.raises(BadInput, match="bad protobuf"):
        cloudevents.parse_contact_event(b"\x08\x99garbage", headers)


def test_reply_is_a_structured_cloudevent_keyed_by_conversation():
    record = cloudevents.reply(
        cloudevents.REPLY_BOT, "urn:relais:bot", "t#1/bot", "conv-42", "Bonjour !", "fr", intent="x"
    )
    doc = json.loads(record.value)
    assert record.topic == "relais.replies.v1" and record.key == b"conv-42"
    assert dict(record.headers)["content-type"] == b"application/cloudevents+json"
    assert (doc["specversion"], doc["type"], doc["subject"], doc["id"]) == (
        "1.0",
        "relais.reply.bot.v1",
        "conv-42",
        "t#1/bot",
    )
    assert doc["data"] == {"text": "Bonjour !", "language": "fr", "intent": "x"}


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=300),
    st.lists(
        st.tuples(st.sampled_from(["content-type", "ce_specversion", "ce_type", "x"]), st.binary(max_size=40)),
        max_size=4,
    ),
)
def test_parser_never_fails_other_than_with_bad_input(value, headers):
    try:
        parsed = cloudevents.parse_contact_event(value, headers)
    except BadInput as bad:
        assert str(bad).strip(), "BadInput without a reason"
    else:  # the rare bytes that parse make an event the services can use as it is
        check_invariants(parsed, 4000)


def survey(**data) -> dict:
    return event(type=cloudevents.CONTACT_SURVEY, data=data)


def test_a_survey_answer_is_parsed_with_its_scale_score_and_comment():
    parsed = parse(survey(score=4, comment="Rapide, merci", answered_at="2026-11-26T10:05:00Z"))
    assert parsed.message is None and parsed.subject == "conv-42"
    assert (parsed.survey.scale, parsed.survey.score, parsed.survey.comment) == (
        pb.SURVEY_SCALE_CSAT,
        4,
        "Rapide, merci",
    )
    assert parsed.survey.answered_at.ToJsonString() == "2026-11-26T10:05:00Z"
    nps = parse(survey(score=0, scale="nps"))
    assert (nps.survey.scale, nps.survey.score) == (pb.SURVEY_SCALE_NPS, 0)


def test_a_survey_answer_in_binary_mode_with_protobuf_data():
    data = pb.ContactSurvey(score=9, scale=pb.SURVEY_SCALE_NPS).SerializeToString()
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"s-1"),
        ("ce_source", b"urn:x"),
        ("ce_subject", b"conv-1"),
        ("ce_type", cloudevents.CONTACT_SURVEY.encode()),
        ("ce_time", b"2026-11-26T10:00:00Z"),
        ("content-type", b"application/protobuf"),
    ]
    parsed = cloudevents.parse_contact_event(data, headers)
    assert parsed.survey is not None
    assert (parsed.survey.score, parsed.survey.answered_at.ToJsonString()) == (9, "2026-11-26T10:00:00Z")


@pytest.mark.parametrize(
    "data, reason",
    [
        ({"score": 6}, "out of range: 1 to 5"),
        ({"score": 0}, "out of range: 1 to 5"),
        ({"score": 11, "scale": "nps"}, "out of range: 0 to 10"),
        ({"score": "5"}, "data.score must be an integer"),
        ({"score": True}, "data.score must be an integer"),
        ({"score": 3, "scale": "stars"}, "data.scale must be one of"),
        ({"score": 3, "comment": 42}, "data.comment must be a string"),
        ({}, "data.score must be an integer"),
    ],
)
def test_bad_survey_answers_get_a_clear_reason(data, reason):
    with pytest.raises(BadInput, match=reason):
        parse(survey(**data))


def test_survey_invitation_and_request_ask_in_the_customer_language():
    assert "satisfait" in cloudevents.survey_invitation("fr")["question"]
    record = cloudevents.survey_request("urn:relais:routing", "t-1/survey", "conv-1", "en")
    doc = json.loads(record.value)
    assert doc["type"] == cloudevents.REPLY_SURVEY and doc["subject"] == "conv-1"
    assert doc["data"]["survey"]["type"] == cloudevents.CONTACT_SURVEY and "satisfied" in doc["data"]["text"]


# --- The Kafka protocol binding as the official SDKs produce it ---

from datetime import datetime, timedelta, timezone  # noqa: E402

from cloudevents.core.bindings import kafka as ce_kafka  # noqa: E402  (cloudevents 2.x)
from cloudevents.core.v1.event import CloudEvent  # noqa: E402
from cloudevents.v1 import kafka as ce_kafka_v1  # noqa: E402  (the 1.x API, cloudevents.kafka there)
from cloudevents.v1.http import CloudEvent as CloudEventV1API  # noqa: E402

from tests.unit.common.test_cloudevents_fuzz import check_invariants  # noqa: E402

TRACEPARENT = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
MESSAGE_DATA = {"channel": "sms", "customer": {"id": "c-7", "language": "en"}, "text": "Where is my order CMD-123456?"}


def sdk_attributes(event_type=cloudevents.CONTACT_MESSAGE, **extra) -> dict:
    return {
        "type": event_type,
        "source": "urn:shop:sms",
        "subject": "conv-42",
        "partitionkey": "conv-42",
        "traceparent": TRACEPARENT,
        **extra,
    }


def from_kafka_message(message, **kw) -> cloudevents.ContactEvent:
    """What intake sees of an SDK's KafkaMessage once a Kafka client published it: headers as (name, bytes)."""
    value = message.value.encode() if isinstance(message.value, str) else message.value
    return cloudevents.parse_contact_event(value, list(message.headers.items()), **kw)


@pytest.mark.parametrize("to_kafka", [ce_kafka.to_binary_event, ce_kafka.to_structured_event])
@pytest.mark.parametrize("content_type", [None, "application/json"])
def test_the_python_sdk_message_in_either_mode_is_parsed(to_kafka, content_type):
    at = datetime(2026, 11, 26, 10, 0, 0, 250000, tzinfo=timezone(timedelta(hours=1)))
    attributes = sdk_attributes(time=at) | ({"datacontenttype": content_type} if content_type else {})
    message = to_kafka(CloudEvent(attributes, MESSAGE_DATA))
    assert message.key == "conv-42"  # the partitionkey: the SDK's key for the record
    e = from_kafka_message(message)
    assert (e.source, e.subject, e.type, e.traceparent) == (
        "urn:shop:sms",
        "conv-42",
        cloudevents.CONTACT_MESSAGE,
        TRACEPARENT,
    )
    drawn_id = message.headers["ce_id"].decode() if "ce_id" in message.headers else json.loads(message.value)["id"]
    assert e.id == drawn_id  # the UUID the SDK drew
    assert e.message is not None
    assert (e.message.channel, e.message.customer.id, e.message.text) == (pb.CHANNEL_SMS, "c-7", MESSAGE_DATA["text"])
    assert e.message.sent_at.ToJsonString() == "2026-11-26T09:00:00.250Z"  # from `time`, the data having no sent_at
    assert e.message.customer.time_zone == "+01:00"  # the offset the customer's time was written in


@pytest.mark.parametrize("to_kafka", [ce_kafka.to_binary_event, ce_kafka.to_structured_event])
def test_the_python_sdk_survey_answer_in_either_mode_is_parsed(to_kafka):
    data = {"score": 9, "scale": "nps", "comment": "Très bien"}
    attributes = sdk_attributes(
        cloudevents.CONTACT_SURVEY,
        datacontenttype="application/json",
        time=datetime(2026, 11, 26, 10, 5, tzinfo=timezone.utc),
    )
    e = from_kafka_message(to_kafka(CloudEvent(attributes, data)))
    assert e.message is None and e.subject == "conv-42" and e.survey is not None
    assert (e.survey.scale, e.survey.score, e.survey.comment) == (pb.SURVEY_SCALE_NPS, 9, "Très bien")
    assert e.survey.answered_at.ToJsonString() == "2026-11-26T10:05:00Z"


@pytest.mark.parametrize("to_kafka", [ce_kafka_v1.to_binary, ce_kafka_v1.to_structured])
def test_the_python_sdk_1x_api_in_either_mode_is_parsed(to_kafka):
    """cloudevents.v1.kafka (cloudevents.kafka before 2.0): its to_structured sets content-type to the data's type."""
    event = CloudEventV1API(sdk_attributes(datacontenttype="application/json"), MESSAGE_DATA)
    message = to_kafka(event)
    if to_kafka is ce_kafka_v1.to_structured:
        assert message.headers == {"content-type": b"application/json"}  # not application/cloudevents+json
    e = from_kafka_message(message)
    assert e.message is not None
    assert (e.id, e.subject, e.message.text, e.traceparent) == (
        event["id"],
        "conv-42",
        MESSAGE_DATA["text"],
        TRACEPARENT,
    )
    assert e.message.sent_at.ToDatetime(tzinfo=timezone.utc) == datetime.fromisoformat(event["time"])


def test_the_python_sdk_with_protobuf_data_in_binary_mode_and_base64_in_structured_mode():
    data = pb.ContactMessage(
        channel=pb.CHANNEL_VOICE_TRANSCRIPT, customer=pb.Customer(id="c-9"), text="allo"
    ).SerializeToString()
    event = CloudEvent(sdk_attributes(datacontenttype="application/protobuf"), data)
    binary = ce_kafka.to_binary_event(event)
    assert dict(binary.headers)["content-type"] == b"application/protobuf"
    structured = ce_kafka.to_structured_event(event)
    assert "data_base64" in json.loads(structured.value)
    for message in (binary, structured):
        e = from_kafka_message(message)
        assert e.message is not None
        assert (e.message.channel, e.message.text, e.subject) == (pb.CHANNEL_VOICE_TRANSCRIPT, "allo", "conv-42")


def test_an_sdk_event_with_a_non_rfc3339_time_is_refused():
    """The 1.x API takes `time` as the producer writes it: a date alone is not a CloudEvents Timestamp."""
    event = CloudEventV1API(sdk_attributes(datacontenttype="application/json", time="2026-11-26"), MESSAGE_DATA)
    for to_kafka in (ce_kafka_v1.to_binary, ce_kafka_v1.to_structured):
        with pytest.raises(BadInput, match=r"`time` is not an RFC 3339 timestamp: '2026-11-26'"):
            from_kafka_message(to_kafka(event))


# Header sets as the Go (sdk-go protocol/kafka_sarama), Java (cloudevents-kafka) and JavaScript (sdk-javascript
# message/kafka) SDKs write them, with the time formats each uses.
def binary_headers(
    time: str, content_type: bytes | None = b"application/json", **extra: bytes
) -> list[tuple[str, bytes]]:
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"evt-9"),
        ("ce_source", b"urn:shop:sms"),
        ("ce_type", cloudevents.CONTACT_MESSAGE.encode()),
        ("ce_subject", b"conv-42"),
        ("ce_time", time.encode()),
    ]
    if content_type is not None:
        headers.append(("content-type", content_type))
    return headers + [(name, value) for name, value in extra.items()]


def structured_value(time: str, **extra) -> bytes:
    doc = {
        "specversion": "1.0",
        "id": "evt-9",
        "source": "urn:shop:sms",
        "type": cloudevents.CONTACT_MESSAGE,
        "subject": "conv-42",
        "time": time,
        "datacontenttype": "application/json",
        "data": MESSAGE_DATA,
        **extra,
    }
    return json.dumps(doc).encode()


SDK_RECORDS = {
    "go binary": (
        json.dumps(MESSAGE_DATA).encode(),  # RFC3339Nano, extensions as ce_ headers
        binary_headers(
            "2026-11-26T10:00:00.123456789Z", ce_partitionkey=b"conv-42", ce_traceparent=TRACEPARENT.encode()
        ),
    ),
    "go structured": (
        structured_value("2026-11-26T10:00:00.123456789Z", partitionkey="conv-42"),
        [("content-type", b"application/cloudevents+json")],
    ),
    "java binary": (
        json.dumps(MESSAGE_DATA).encode(),  # ISO_OFFSET_DATE_TIME
        binary_headers("2026-11-26T11:00:00.123456789+01:00", ce_traceparent=TRACEPARENT.encode()),
    ),
    "java structured": (
        structured_value("2026-11-26T11:00:00.123456789+01:00"),
        [("content-type", b"application/cloudevents+json")],
    ),
    "javascript binary": (
        json.dumps(MESSAGE_DATA).encode(),  # Date.toISOString(); every attribute as ce_, datacontenttype too
        binary_headers(
            "2026-11-26T10:00:00.123Z",
            ce_datacontenttype=b"application/json",
            ce_partitionkey=b"conv-42",
            ce_traceparent=TRACEPARENT.encode(),
        ),
    ),
    "javascript structured": (
        structured_value("2026-11-26T10:00:00.123Z", partitionkey="conv-42"),
        [("content-type", b"application/cloudevents+json; charset=utf-8")],
    ),
}


@pytest.mark.parametrize("sdk", sorted(SDK_RECORDS))
def test_events_as_the_go_java_and_javascript_sdks_produce_them_are_parsed(sdk):
    value, headers = SDK_RECORDS[sdk]
    e = cloudevents.parse_contact_event(value, headers)
    assert e.message is not None
    assert (e.id, e.source, e.subject, e.message.text, e.message.customer.id) == (
        "evt-9",
        "urn:shop:sms",
        "conv-42",
        MESSAGE_DATA["text"],
        "c-7",
    )
    assert e.message.sent_at.ToJsonString().startswith("2026-11-26T10:00:00.123")
    if "binary" in sdk:
        assert e.traceparent == TRACEPARENT


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        b"application/json",
        b"application/json; charset=utf-8",
        b"Application/JSON;charset=UTF-8",
        b"text/json",
        b"application/vnd.shop.contact+json",
    ],
)
def test_binary_mode_reads_json_data_whatever_the_json_media_type(content_type):
    e = cloudevents.parse_contact_event(
        json.dumps(MESSAGE_DATA).encode(), binary_headers("2026-11-26T10:00:00Z", content_type)
    )
    assert e.message is not None
    assert e.message.text == MESSAGE_DATA["text"] and e.message.sent_at.ToJsonString() == "2026-11-26T10:00:00Z"


def test_the_partitionkey_is_not_the_conversation():
    """A producer may key by customer (partitionkey); the conversation is the subject, and relais orders by it."""
    headers = binary_headers("2026-11-26T10:00:00Z", ce_partitionkey=b"customer-c-7")
    assert cloudevents.parse_contact_event(json.dumps(MESSAGE_DATA).encode(), headers).subject == "conv-42"
    e = cloudevents.parse_contact_event(
        structured_value("2026-11-26T10:00:00Z", partitionkey="customer-c-7"), STRUCTURED
    )
    assert e.subject == "conv-42"


@pytest.mark.parametrize(
    "time, sent_at",
    [
        ("2026-11-26T10:00:00Z", "2026-11-26T10:00:00Z"),
        ("2026-11-26t10:00:00z", "2026-11-26T10:00:00Z"),
        ("2026-11-26T12:30:00+02:30", "2026-11-26T10:00:00Z"),
        ("2026-11-26T05:00:00.5-05:00", "2026-11-26T10:00:00.500Z"),
        ("2026-11-26T10:00:00.000000001Z", "2026-11-26T10:00:00.000000001Z"),
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59Z"),  # a leap second
    ],
)
def test_rfc3339_times_are_read_in_both_modes(time, sent_at):
    binary = cloudevents.parse_contact_event(json.dumps(MESSAGE_DATA).encode(), binary_headers(time))
    structured = parse(event(time=time, data=MESSAGE_DATA))
    assert binary.message is not None and structured.message is not None
    assert binary.message.sent_at.ToJsonString() == structured.message.sent_at.ToJsonString() == sent_at


@pytest.mark.parametrize(
    "time, reason",
    [
        ("2026-11-26", "not an RFC 3339 timestamp"),
        ("2026-11-26T10:00:00", "not an RFC 3339 timestamp"),  # no offset
        ("2026-11-26 10:00:00Z", "not an RFC 3339 timestamp"),
        ("2026-11-26T10:00Z", "not an RFC 3339 timestamp"),
        ("20261126T100000Z", "not an RFC 3339 timestamp"),
        ("2026-11-26T10:00:00+0100", "not an RFC 3339 timestamp"),
        ("Thu, 26 Nov 2026 10:00:00 GMT", "not an RFC 3339 timestamp"),
        ("1764151200", "not an RFC 3339 timestamp"),
        ("2026-02-30T10:00:00Z", "not a valid date and time"),
        ("2026-11-26T24:00:00Z", "not a valid date and time"),
        ("2026-11-26T10:00:00+01:75", "not a valid date and time"),
        ("0001-01-01T00:00:00+01:00", "out of range"),
    ],
)
def test_a_time_that_is_not_rfc3339_is_refused_in_both_modes_even_when_the_data_has_its_own(time, reason):
    with pytest.raises(BadInput, match=f"`time` is {reason}"):
        cloudevents.parse_contact_event(json.dumps(MESSAGE_DATA).encode(), binary_headers(time))
    with pytest.raises(BadInput, match=f"`time` is {reason}"):
        parse(event(time=time))  # data.sent_at given: `time` is still checked
    with pytest.raises(BadInput, match=f"data.sent_at is {reason}"):
        parse(event(data=MESSAGE_DATA | {"sent_at": time}))


def test_a_time_that_is_not_a_string_is_refused():
    with pytest.raises(BadInput, match="`time` must be an RFC 3339 timestamp string"):
        parse(event(time=1764151200))


@pytest.mark.parametrize(
    "value, headers, reason",
    [
        (
            json.dumps(MESSAGE_DATA).encode(),
            binary_headers("2026-11-26T10:00:00Z", b"text/plain"),
            "unsupported data content type 'text/plain'",
        ),
        (b"", binary_headers("2026-11-26T10:00:00Z"), "empty record value"),
        (b'"just a string"', binary_headers("2026-11-26T10:00:00Z"), "`data` must be a JSON object"),
        (
            b"\x08\x02\x12\x03",
            binary_headers("2026-11-26T10:00:00Z", None),  # protobuf without its content type
            "protobuf data needs content-type application/protobuf",
        ),
        (b"\x08\x02\x12\x03", binary_headers("2026-11-26T10:00:00Z"), "malformed JSON"),
        (
            json.dumps(MESSAGE_DATA).encode(),
            binary_headers("2026-11-26T10:00:00Z", ce_specversion=b"0.3"),
            "unsupported CloudEvents specversion '0.3'",
        ),
        (
            json.dumps(event()).encode(),
            [("content-type", b"application/cloudevents-batch+json")],
            "unsupported event format 'application/cloudevents-batch+json'",
        ),
        (json.dumps(event()).encode(), [("content-type", b"application/cloudevents+avro")], "unsupported event format"),
        (
            json.dumps(MESSAGE_DATA).encode(),
            [("content-type", b"application/json")],
            "no ce_specversion header (binary mode) and no specversion in the value",
        ),
        (json.dumps(event()).encode(), [("content-type", b"application/protobuf")], "not a CloudEvent"),
        (
            json.dumps(event(datacontenttype="text/plain", data="Bonjour")).encode(),
            STRUCTURED,
            "datacontenttype 'text/plain': a structured event's `data` must be JSON",
        ),
        (json.dumps(event(datacontenttype=5)).encode(), STRUCTURED, "`datacontenttype` must be a string"),
        (json.dumps({**event(), "data_base64": "e30="}).encode(), STRUCTURED, "`data` or `data_base64`, not both"),
        (
            json.dumps({k: v for k, v in event(data_base64="%%%").items() if k != "data"}).encode(),
            STRUCTURED,
            "`data_base64` is not valid base64",
        ),
        (
            json.dumps({k: v for k, v in event(data_base64=["x"]).items() if k != "data"}).encode(),
            STRUCTURED,
            "`data_base64` must be a base64 string",
        ),
        (
            json.dumps(
                {
                    k: v
                    for k, v in event(data_base64="aGVsbG8=", datacontenttype="application/json").items()
                    if k != "data"
                }
            ).encode(),
            STRUCTURED,
            "malformed JSON",
        ),
    ],
)
def test_bad_sdk_shaped_records_get_a_clear_reason(value, headers, reason):
    with pytest.raises(BadInput) as error:
        cloudevents.parse_contact_event(value, headers)
    assert reason in str(error.value)


json_data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    json_data,
    st.sampled_from([None, b"application/json", b"text/json"]),
    st.sampled_from([b"2026-11-26T10:00:00Z", b"2026-11-26", b"", b"\xff"]),
    st.sampled_from([cloudevents.CONTACT_MESSAGE, cloudevents.CONTACT_SURVEY]),
)
def test_binary_json_data_of_any_shape_is_parsed_or_refused_with_a_reason(data, content_type, time, kind):
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"e-1"),
        ("ce_source", b"urn:s"),
        ("ce_subject", b"conv-1"),
        ("ce_type", kind.encode()),
        ("ce_time", time),
    ] + ([("content-type", content_type)] if content_type else [])
    try:
        e = cloudevents.parse_contact_event(json.dumps(data).encode(), headers)
    except BadInput as bad:
        assert str(bad).strip()
    else:
        check_invariants(e, 4000)
