"""The number to call back and the customer's time zone: data.customer.phone and time_zone, parsed without a broker."""

import json
from datetime import timedelta

import pytest

from relais.common import cloudevents, customer_contact
from relais.common.bus import BadInput
from relais.common.pb import conversation_pb2 as pb

STRUCTURED = [("content-type", b"application/cloudevents+json")]


def parse(customer: dict, sent_at: str = "2026-12-07T10:00:00Z", text: str = "Bonjour"):
    doc = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "urn:shop:chat",
        "type": "relais.contact.message.v1",
        "subject": "conv-42",
        "data": {"channel": "chat", "customer": {"id": "c-1", **customer}, "text": text, "sent_at": sent_at},
    }
    return cloudevents.parse_contact_event(json.dumps(doc).encode(), STRUCTURED).message


@pytest.mark.parametrize(
    "given,plain",
    [
        ("+33 6 12 34 56 78", "+33612345678"),
        ("06.12.34.56.78", "0612345678"),
        ("+44 (20) 7946-0958", "+442079460958"),
        ("12345", None),
        ("call me", None),
        ("+33 6 12 34 56 78 90 12 34 5", None),
        ("", None),
    ],
)
def test_a_phone_number_is_taken_in_a_plain_form_or_refused(given, plain):
    assert customer_contact.phone_number(given) == plain


def test_the_numbers_a_customer_writes_are_the_ones_redaction_finds():
    assert customer_contact.numbers_in("Sure, it's +44 20 7946 0958, or 06 12 34 56 78") == [
        "+442079460958",
        "0612345678",
    ]
    assert customer_contact.numbers_in("my order CMD-123456 of 45,90 EUR") == []


def test_the_time_zone_is_an_iana_name_or_an_offset_and_else_the_offset_of_sent_at():
    assert str(customer_contact.time_zone("Europe/Paris")) == "Europe/Paris"
    offset = customer_contact.time_zone("-04:30")
    assert offset is not None and offset.utcoffset(None) == -timedelta(hours=4, minutes=30)
    assert customer_contact.time_zone("Mars/Olympus") is None and customer_contact.time_zone("../etc/passwd") is None
    assert customer_contact.offset_of("2026-12-07T15:30:00+05:30") == "+05:30"
    assert (
        customer_contact.offset_of("2026-12-07T10:00:00Z")
        == ""
        == customer_contact.offset_of("2026-12-07T10:00:00+00:00")
    )
    assert (
        parse({"time_zone": "America/Montreal"}, "2026-12-07T10:00:00+01:00").customer.time_zone == "America/Montreal"
    )
    assert parse({}, "2026-12-07T10:00:00+01:00").customer.time_zone == "+01:00"
    assert parse({}).customer.time_zone == ""


def test_phone_and_time_zone_are_checked_at_the_door():
    assert parse({"phone": "+33 6 12 34 56 78"}).customer.phone == "+33 6 12 34 56 78"
    with pytest.raises(BadInput, match="data.customer.phone is not a phone number"):
        parse({"phone": "not a number"})
    with pytest.raises(BadInput, match="data.customer.phone must be a string"):
        parse({"phone": 33612345678})
    with pytest.raises(BadInput, match="data.customer.time_zone is not an IANA time zone"):
        parse({"time_zone": "Paris"})


def test_intake_takes_the_number_out_of_the_message_so_it_never_travels_in_a_turn():
    message = parse({"phone": "+33 6 12 34 56 78"})
    assert customer_contact.take_phone(message) == "+33612345678"
    assert message.customer.phone == "" and "612345678" not in str(pb.Turn(customer=message.customer))
    assert customer_contact.take_phone(parse({})) == ""


class Conn:
    """What keep asks of the database: whether routing asked for a number, and the update."""

    def __init__(self, asked: bool):
        self.asked = asked
        self.updates: list[tuple] = []

    async def fetchval(self, sql, *args):
        assert "phone_asked_at IS NOT NULL" in sql
        return self.asked

    async def execute(self, sql, *args):
        self.updates.append(args)


@pytest.mark.parametrize(
    "given,text,asked,kept",
    [
        ("+33612345678", "Bonjour", False, "+33612345678"),  # given with the event: kept
        ("", "it's 06 12 34 56 78", True, "0612345678"),  # written while routing asks for it: kept
        ("", "it's 06 12 34 56 78", False, None),  # written at any other time: only redacted
        ("", "no number here", True, None),
    ],
)
async def test_the_number_is_kept_when_given_or_asked_for(given, text, asked, kept):
    from relais.common.redact import redact

    conn = Conn(asked)
    await customer_contact.keep(conn, "conv-42", given, text, redact(text))
    assert conn.updates == ([("conv-42", kept)] if kept else [])


def test_the_console_shows_the_number_on_a_callback_offer():
    from relais.common.pb import agent_desk_pb2 as desk
    from relais.desk import render_event

    offer = desk.Offer(task_id="t", callback=True, callback_phone="+33612345678")
    assert "#1 OFFER (callback: call +33612345678)" in render_event(1, desk.DeskEvent(offer=offer))
