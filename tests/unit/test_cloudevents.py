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
        "specversion": "1.0", "id": "evt-1", "source": "urn:shop:chat", "type": "relais.contact.message.v1",
        "subject": "conv-42",
        "data": {"channel": "chat", "customer": {"id": "c-1", "language": "fr", "tier": "vip"},
                 "text": "Bonjour", "sent_at": "2026-11-26T10:00:00Z"},
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
    headers = [("ce_specversion", b"1.0"), ("ce_id", b"7"), ("ce_source", b"urn:ivr"), ("ce_subject", b"call-1"),
               ("ce_type", b"relais.contact.message.v1"), ("ce_time", b"2026-11-26T09:00:00Z"),
               ("content-type", b"application/protobuf"), ("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]
    e = cloudevents.parse_contact_event(message.SerializeToString(), headers)
    assert e.subject == "call-1" and e.message.text == "allo"
    assert e.message.sent_at.ToJsonString() == "2026-11-26T09:00:00Z"  # from ce_time when data has none
    assert e.traceparent.startswith("00-111")


def test_missing_sent_at_falls_back_to_event_time():
    doc = event(time="2026-11-26T08:30:00Z")
    del doc["data"]["sent_at"]
    assert parse(doc).message.sent_at.ToJsonString() == "2026-11-26T08:30:00Z"


@pytest.mark.parametrize("doc, reason", [
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
    (event(data={"channel": "chat", "customer": {"id": "c", "language": "français!"}, "text": "x"}), "not a language tag"),
    (event(data={"channel": "chat", "customer": {"id": "c"}, "text": "x", "sent_at": "yesterday"}), "not an RFC 3339"),
])
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
    headers = [("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"s"), ("ce_subject", b"c"),
               ("ce_type", b"relais.contact.message.v1"), ("content-type", b"application/protobuf")]
    with pytest.raises(BadInput, match="bad protobuf"):
        cloudevents.parse_contact_event(b"\x08\x99garbage", headers)


def test_reply_is_a_structured_cloudevent_keyed_by_conversation():
    record = cloudevents.reply(cloudevents.REPLY_BOT, "urn:relais:bot", "t#1/bot", "conv-42", "Bonjour !", "fr", intent="x")
    doc = json.loads(record.value)
    assert record.topic == "relais.replies.v1" and record.key == b"conv-42"
    assert dict(record.headers)["content-type"] == b"application/cloudevents+json"
    assert (doc["specversion"], doc["type"], doc["subject"], doc["id"]) == ("1.0", "relais.reply.bot.v1", "conv-42", "t#1/bot")
    assert doc["data"] == {"text": "Bonjour !", "language": "fr", "intent": "x"}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.tuples(st.sampled_from(["content-type", "ce_specversion", "ce_type", "x"]),
                                                   st.binary(max_size=40)), max_size=4))
def test_parser_never_fails_other_than_with_bad_input(value, headers):
    try:
        cloudevents.parse_contact_event(value, headers)
    except BadInput:
        pass


def survey(**data) -> dict:
    return event(type=cloudevents.CONTACT_SURVEY, data=data)


def test_a_survey_answer_is_parsed_with_its_scale_score_and_comment():
    parsed = parse(survey(score=4, comment="Rapide, merci", answered_at="2026-11-26T10:05:00Z"))
    assert parsed.message is None and parsed.subject == "conv-42"
    assert (parsed.survey.scale, parsed.survey.score, parsed.survey.comment) == (pb.SURVEY_SCALE_CSAT, 4, "Rapide, merci")
    assert parsed.survey.answered_at.ToJsonString() == "2026-11-26T10:05:00Z"
    nps = parse(survey(score=0, scale="nps"))
    assert (nps.survey.scale, nps.survey.score) == (pb.SURVEY_SCALE_NPS, 0)


def test_a_survey_answer_in_binary_mode_with_protobuf_data():
    data = pb.ContactSurvey(score=9, scale=pb.SURVEY_SCALE_NPS).SerializeToString()
    headers = [("ce_specversion", b"1.0"), ("ce_id", b"s-1"), ("ce_source", b"urn:x"), ("ce_subject", b"conv-1"),
               ("ce_type", cloudevents.CONTACT_SURVEY.encode()), ("ce_time", b"2026-11-26T10:00:00Z"),
               ("content-type", b"application/protobuf")]
    parsed = cloudevents.parse_contact_event(data, headers)
    assert (parsed.survey.score, parsed.survey.answered_at.ToJsonString()) == (9, "2026-11-26T10:00:00Z")


@pytest.mark.parametrize("data, reason", [
    ({"score": 6}, "out of range: 1 to 5"),
    ({"score": 0}, "out of range: 1 to 5"),
    ({"score": 11, "scale": "nps"}, "out of range: 0 to 10"),
    ({"score": "5"}, "data.score must be an integer"),
    ({"score": True}, "data.score must be an integer"),
    ({"score": 3, "scale": "stars"}, "data.scale must be one of"),
    ({"score": 3, "comment": 42}, "data.comment must be a string"),
    ({}, "data.score must be an integer"),
])
def test_bad_survey_answers_get_a_clear_reason(data, reason):
    with pytest.raises(BadInput, match=reason):
        parse(survey(**data))


def test_survey_invitation_and_request_ask_in_the_customer_language():
    assert "satisfait" in cloudevents.survey_invitation("fr")["question"]
    record = cloudevents.survey_request("urn:relais:routing", "t-1/survey", "conv-1", "en")
    doc = json.loads(record.value)
    assert doc["type"] == cloudevents.REPLY_SURVEY and doc["subject"] == "conv-1"
    assert doc["data"]["survey"]["type"] == cloudevents.CONTACT_SURVEY and "satisfied" in doc["data"]["text"]
