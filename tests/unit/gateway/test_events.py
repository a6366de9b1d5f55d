"""POST /events' reading: the HTTP binding's modes turned into the Kafka binding's record, by intake's parser."""

import json

import pytest
from multidict import CIMultiDict

from relais.common import cloudevents, topics
from relais.common.bus import BadInput
from relais.gateway import events

DATA = {"channel": "chat", "customer": {"id": "c-1", "language": "fr"}, "text": "Où est ma commande ?"}


def structured(**overrides) -> bytes:
    doc = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "urn:test",
        "type": cloudevents.CONTACT_MESSAGE,
        "subject": "conv-1",
        "time": "2026-11-26T10:00:00Z",
        "data": DATA,
    } | overrides
    return json.dumps(doc).encode()


def test_a_structured_event_becomes_its_record_keyed_by_conversation():
    body = structured()
    [accepted] = events.read_request(body, CIMultiDict({"Content-Type": "application/cloudevents+json"}), 4000)
    assert accepted.event.message is not None and accepted.event.message.text == "Où est ma commande ?"
    assert accepted.record.topic == topics.CONTACT_EVENTS and accepted.record.key == b"conv-1"
    assert accepted.record.value == body
    assert accepted.record.headers == [("content-type", b"application/cloudevents+json")]
    # intake reads the record as it reads any other
    assert cloudevents.parse_contact_event(accepted.record.value, accepted.record.headers).id == "e-1"


def test_a_binary_event_takes_its_attributes_from_ce_headers_percent_decoded():
    headers = CIMultiDict(
        {
            "Content-Type": "application/json",
            "ce-specversion": "1.0",
            "ce-id": "e-2",
            "ce-source": "urn:test",
            "ce-type": cloudevents.CONTACT_MESSAGE,
            "ce-subject": "conv%20%C3%A9t%C3%A9",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "Cookie": "not passed on",
        }
    )
    [accepted] = events.read_request(json.dumps(DATA).encode(), headers, 4000)
    assert accepted.event.subject == "conv été" and accepted.record.key == "conv été".encode()
    assert accepted.event.traceparent == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    names = [name for name, _ in accepted.record.headers]
    assert "ce_subject" in names and "content-type" in names and "cookie" not in names
    assert dict(accepted.record.headers)["ce_subject"] == "conv été".encode()


@pytest.mark.parametrize(
    "body, reason",
    [
        (structured(subject=""), "subject"),
        (structured(type="com.example.other"), "unknown event type"),
        (structured(data={**DATA, "channel": "fax"}), "data.channel"),
        (b"{not json", "malformed JSON"),
    ],
)
def test_an_event_intake_would_refuse_is_refused_with_intakes_reason(body, reason):
    with pytest.raises(BadInput, match=reason):
        events.read_request(body, CIMultiDict({"Content-Type": "application/cloudevents+json"}), 4000)


def test_a_plain_json_body_without_ce_headers_is_not_a_cloudevent():
    with pytest.raises(BadInput, match="not a CloudEvent"):
        events.read_request(json.dumps(DATA).encode(), CIMultiDict({"Content-Type": "application/json"}), 4000)


def test_a_batch_is_read_whole_or_refused_naming_the_bad_event():
    batch = [json.loads(structured(id="a")), json.loads(structured(id="b", subject="conv-2"))]
    headers = CIMultiDict({"Content-Type": events.BATCH})
    accepted = events.read_request(json.dumps(batch).encode(), headers, 4000)
    assert [(a.event.id, a.record.key) for a in accepted] == [("a", b"conv-1"), ("b", b"conv-2")]
    batch[1]["specversion"] = "0.3"
    with pytest.raises(BadInput, match="event 1 of the batch: unsupported CloudEvents specversion"):
        events.read_request(json.dumps(batch).encode(), headers, 4000)
    with pytest.raises(BadInput, match="non-empty JSON array"):
        events.read_request(b"[]", headers, 4000)


def test_an_event_over_the_brokers_limit_is_too_large():
    body = structured(data={**DATA, "text": "x" * 1_100_000})
    with pytest.raises(events.TooLarge):
        events.read_request(body, CIMultiDict({"Content-Type": "application/cloudevents+json"}), 2_000_000)
