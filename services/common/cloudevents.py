"""The public contract: CloudEvents 1.0 over the Kafka protocol binding — structured mode (JSON event format)
and binary mode (ce_* headers, JSON or protobuf data), as the official SDKs (Python, Go, Java, JavaScript)
produce them.

Pure functions: `parse_contact_event` turns a Kafka record's value and headers into a
`ContactEvent` or raises `BadInput` with a reason a human can act on; `reply` builds the
structured CloudEvent that relais sends to a customer on relais.replies.v1.
"""

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from google.protobuf.timestamp_pb2 import Timestamp

from relais.common import customer_contact, topics
from relais.common.bus import BadInput, Record, parse
from relais.common.pb import conversation_pb2 as pb

SPEC_VERSION = "1.0"
CONTACT_MESSAGE = "relais.contact.message.v1"
CONTACT_SURVEY = "relais.contact.survey.v1"  # the customer's answer to the satisfaction survey
INBOUND_TYPES = (CONTACT_MESSAGE, CONTACT_SURVEY)
SURVEY_SCALES = {"csat": (pb.SURVEY_SCALE_CSAT, 1, 5), "nps": (pb.SURVEY_SCALE_NPS, 0, 10)}
SURVEY_RANGES = {scale: (low, high) for scale, low, high in SURVEY_SCALES.values()}
STRUCTURED = "application/cloudevents+json"
PROTOBUF_TYPES = ("application/protobuf", "application/x-protobuf")
# Data content types read as JSON: application/json, text/json, application/<anything>+json (parameters aside).
JSON_MEDIA = re.compile(r"(?:application|text)/(?:[a-z0-9!#$&^_.+-]+\+)?json")
# RFC 3339 section 5.6 date-time: T (or t), seconds, an optional fraction, Z (or z) or a numeric offset.
RFC3339 = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})[Tt](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r":(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?(?:[Zz]|(?P<sign>[+-])(?P<oh>[0-9]{2}):(?P<om>[0-9]{2}))"
)

CHANNELS = {
    "chat": pb.CHANNEL_CHAT,
    "email": pb.CHANNEL_EMAIL,
    "sms": pb.CHANNEL_SMS,
    "voice_transcript": pb.CHANNEL_VOICE_TRANSCRIPT,
}
CHANNEL_NAMES = {v: k for k, v in CHANNELS.items()}
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")
# id, source, subject and the customer's fields become database keys (a btree entry holds at most ~2,700 bytes).
MAX_ATTRIBUTE_CHARS = 256

# Reply types on relais.replies.v1.
REPLY_BOT = "relais.reply.bot.v1"
REPLY_HANDOFF = "relais.reply.handoff.v1"
REPLY_AGENT = "relais.reply.agent.v1"
REPLY_QUEUE = "relais.reply.queue.v1"
REPLY_SURVEY = "relais.reply.survey.v1"  # asks the customer for a relais.contact.survey.v1 answer


@dataclass(frozen=True)
class ContactEvent:
    source: str
    id: str
    type: str
    subject: str  # the conversation's external id
    message: pb.ContactMessage | None  # relais.contact.message.v1
    traceparent: str | None = None
    survey: pb.ContactSurvey | None = None  # relais.contact.survey.v1
    # The message's strings and sent_at were checked as read from JSON: _validate need not check them again.
    _data_checked: bool = field(default=False, repr=False, compare=False)

    @property
    def event_key(self) -> str:
        return f"{self.source}#{self.id}"


def parse_contact_event(
    value: bytes | None, headers: list[tuple[str, bytes]] | None, max_text_chars: int = 4000
) -> ContactEvent:
    """The content mode as the Kafka protocol binding tells it (section 3): a content-type starting with
    application/cloudevents is structured; else a ce_specversion header is binary; else, with no content-type
    or a JSON one, the value is a structured event (the Python SDK's cloudevents.v1.kafka.to_structured puts
    the data's content type in the header)."""
    hdrs = _decode_headers(headers or [])
    content_type = hdrs.get("content-type", "")
    media = _media_type(content_type)
    if media.startswith("application/cloudevents"):
        if media != STRUCTURED:  # application/cloudevents-batch+json, +avro, ...
            raise BadInput(f"unsupported event format {media!r}: structured mode takes {STRUCTURED}")
        event = _parse_structured(_json(value, "a structured CloudEvent"), None)
    elif "ce_specversion" in hdrs:
        event = _parse_binary(value, hdrs)
    elif not media or _is_json(media):
        doc = _json(value, "a structured CloudEvent")
        if media and not (isinstance(doc, dict) and "specversion" in doc):
            raise BadInput(
                f"not a CloudEvent: content-type {media!r} with no ce_specversion header (binary mode) "
                "and no specversion in the value (structured mode)"
            )
        event = _parse_structured(doc, content_type or None)
    else:
        raise BadInput(f"not a CloudEvent: content-type {media!r} and no ce_specversion header")
    _validate(event, max_text_chars)
    return event


def _decode_headers(headers: list[tuple[str, bytes]]) -> dict[str, str]:
    try:
        return {k.lower(): (v or b"").decode("utf-8") for k, v in headers}
    except UnicodeDecodeError as error:
        raise BadInput(f"header is not valid UTF-8: {error}") from None


def _media_type(content_type: str) -> str:
    """'application/json; charset=utf-8' -> 'application/json'."""
    return content_type.split(";")[0].strip().lower()


def _is_json(media: str) -> bool:
    return bool(JSON_MEDIA.fullmatch(media))


def _json(value: bytes | None, what: str):
    if not value:
        raise BadInput(f"empty record value: expected {what} (JSON)")
    try:
        return json.loads(value.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise BadInput(f"value is not valid UTF-8: {error}") from None
    except json.JSONDecodeError as error:
        raise BadInput(f"malformed JSON: {error}") from None
    except (ValueError, RecursionError) as error:  # an integer of over 4,300 digits, nesting too deep
        raise BadInput(f"malformed JSON: {error}") from None


def _parse_structured(doc, header_content_type: str | None) -> ContactEvent:
    if not isinstance(doc, dict):
        raise BadInput("structured CloudEvent must be a JSON object")
    _check_attributes(doc.get("specversion"), doc)
    for name in ("subject", "traceparent", "datacontenttype"):
        if doc.get(name) is not None and not isinstance(doc[name], str):
            raise BadInput(f"CloudEvents attribute `{name}` must be a string")
    content_type = doc.get("datacontenttype") or header_content_type or ""
    if "data_base64" in doc:
        if "data" in doc:
            raise BadInput("a structured CloudEvent carries `data` or `data_base64`, not both")
        if not isinstance(doc["data_base64"], str):
            raise BadInput("`data_base64` must be a base64 string")
        try:
            raw = base64.b64decode(doc["data_base64"], validate=True)
        except ValueError:
            raise BadInput("`data_base64` is not valid base64") from None
        return _from_bytes(doc, raw, _media_type(content_type), "data_base64")
    if content_type and not _is_json(_media_type(content_type)):
        raise BadInput(
            f"datacontenttype {_media_type(content_type)!r}: a structured event's `data` must be JSON "
            "(application/json); other data goes base64 in data_base64, or in binary mode"
        )
    return _from_json(doc, doc.get("data"), doc.get("traceparent"))


def _parse_binary(value: bytes | None, hdrs: dict[str, str]) -> ContactEvent:
    attrs = {k[3:]: v for k, v in hdrs.items() if k.startswith("ce_")}
    _check_attributes(attrs.get("specversion"), attrs)
    # content-type is the datacontenttype (3.2.1); the JavaScript SDK also sends ce_datacontenttype.
    media = _media_type(hdrs.get("content-type") or attrs.get("datacontenttype", ""))
    return _from_bytes(attrs, value, media, "the record value", hdrs.get("traceparent"))


def _from_bytes(
    attrs: dict, data: bytes | None, media: str, where: str, traceparent: str | None = None
) -> ContactEvent:
    """The event's data as bytes: protobuf, or JSON (the default when no content type is given)."""
    traceparent = attrs.get("traceparent") or traceparent
    if media in PROTOBUF_TYPES:
        return _from_protobuf(attrs, data or b"", traceparent)
    if not media or _is_json(media):
        try:
            document = _json(data, f"the event's JSON data in {where}")
        except BadInput as bad:
            if media:
                raise
            raise BadInput(
                f"{bad} (data without a content type is read as JSON; protobuf data needs content-type "
                "application/protobuf)"
            ) from None
        return _from_json(attrs, document, traceparent)
    raise BadInput(
        f"unsupported data content type {media!r}: send JSON (application/json) or protobuf (application/protobuf)"
    )


def _from_json(attrs: dict, data, traceparent: str | None) -> ContactEvent:
    event_time = _event_time(attrs)
    if attrs["type"] == CONTACT_SURVEY:
        if not isinstance(data, dict):
            raise BadInput("`data` must be a JSON object with score and an optional comment")
        return ContactEvent(
            source=attrs["source"],
            id=attrs["id"],
            type=attrs["type"],
            subject=attrs.get("subject") or "",
            message=None,
            survey=_survey_from_json(data, event_time),
            traceparent=traceparent,
        )
    if not isinstance(data, dict):
        raise BadInput("`data` must be a JSON object with channel, customer, text, sent_at")
    return ContactEvent(
        source=attrs["source"],
        id=attrs["id"],
        type=attrs["type"],
        subject=attrs.get("subject") or "",
        message=_message_from_json(data, event_time),
        traceparent=traceparent,
        _data_checked=True,
    )


def _from_protobuf(attrs: dict, data: bytes, traceparent: str | None) -> ContactEvent:
    event_time = _event_time(attrs)
    if attrs["type"] == CONTACT_SURVEY:
        survey = parse(pb.ContactSurvey, data, "data is ")
        if not survey.HasField("answered_at"):
            _set_time(survey.answered_at, "`time`", event_time)
        return ContactEvent(
            source=attrs["source"],
            id=attrs["id"],
            type=attrs["type"],
            subject=attrs.get("subject") or "",
            message=None,
            survey=survey,
            traceparent=traceparent,
        )
    message = parse(pb.ContactMessage, data, "data is ")
    if not message.HasField("sent_at"):
        _set_time(message.sent_at, "`time`", event_time)
    return ContactEvent(
        source=attrs["source"],
        id=attrs["id"],
        type=attrs["type"],
        subject=attrs.get("subject") or "",
        message=message,
        traceparent=traceparent,
    )


def _event_time(attrs: dict) -> str | None:
    """The `time` attribute, checked even when the data carries its own time: RFC 3339 or refused."""
    value = attrs.get("time")
    if value is not None:
        _set_time(Timestamp(), "`time`", value)
    return value


def _check_attributes(specversion, attrs: dict) -> None:
    if specversion != SPEC_VERSION:
        raise BadInput(f"unsupported CloudEvents specversion {specversion!r}: expected '1.0'")
    for name in ("id", "source", "type"):
        if not isinstance(attrs.get(name), str) or not attrs[name].strip():
            raise BadInput(f"missing required CloudEvents attribute `{name}`")
    if attrs["type"] not in INBOUND_TYPES:
        raise BadInput(f"unknown event type {attrs['type']!r}: expected one of {', '.join(INBOUND_TYPES)}")


def _message_from_json(data: dict, event_time) -> pb.ContactMessage:
    customer = data.get("customer")
    if not isinstance(customer, dict):
        raise BadInput("data.customer must be an object with at least `id`")
    for name in ("id", "language", "tier", "phone", "time_zone"):
        if customer.get(name) is not None and not isinstance(customer[name], str):
            raise BadInput(f"data.customer.{name} must be a string")
        _check_string(f"data.customer.{name}", customer.get(name) or "")
    text = data.get("text")
    if not isinstance(text, str):
        raise BadInput("data.text must be a string")
    _check_string("data.text", text, None)
    channel = data.get("channel")
    if not isinstance(channel, str) or channel not in CHANNELS:
        raise BadInput(f"data.channel must be one of {sorted(CHANNELS)}, got {channel!r}")
    sent_at = data.get("sent_at") or event_time
    message = pb.ContactMessage(
        channel=CHANNELS[channel],
        customer=pb.Customer(
            id=customer.get("id") or "",
            language=customer.get("language") or "",
            tier=customer.get("tier") or "",
            phone=customer.get("phone") or "",
            # else the offset the sender wrote sent_at in: the customer's, when not UTC
            time_zone=customer.get("time_zone")
            or customer_contact.offset_of(sent_at if isinstance(sent_at, str) else ""),
        ),
        text=text,
    )
    _set_time(message.sent_at, "data.sent_at" if data.get("sent_at") else "`time`", sent_at)
    return message


def _survey_from_json(data: dict, event_time) -> pb.ContactSurvey:
    scale = data.get("scale", "csat")
    if not isinstance(scale, str) or scale not in SURVEY_SCALES:
        raise BadInput(f"data.scale must be one of {sorted(SURVEY_SCALES)}, got {scale!r}")
    score = data.get("score")
    if not isinstance(score, int) or isinstance(score, bool):
        raise BadInput(f"data.score must be an integer, got {score!r}")
    low, high = SURVEY_SCALES[scale][1:]
    if not low <= score <= high:
        raise BadInput(f"data.score {score} is out of range: {low} to {high} on this scale")
    comment = data.get("comment") or ""
    if not isinstance(comment, str):
        raise BadInput("data.comment must be a string")
    _check_string("data.comment", comment, None)
    customer = data.get("customer") or {}
    if not isinstance(customer, dict) or not isinstance(customer.get("id", ""), str):
        raise BadInput("data.customer must be an object with a string `id`")
    _check_string("data.customer.id", customer.get("id", ""))
    survey = pb.ContactSurvey(
        score=score, comment=comment, scale=SURVEY_SCALES[scale][0], customer=pb.Customer(id=customer.get("id", ""))
    )
    _set_time(
        survey.answered_at,
        "data.answered_at" if data.get("answered_at") else "`time`",
        data.get("answered_at") or event_time,
    )
    return survey


# A Timestamp's range (protobuf's): 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_TIMESTAMP_SECONDS = (-62135596800, 253402300799)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_SECONDS_PER_DAY = 86400


def _set_time(target: Timestamp, name: str, value) -> None:
    if value is None:
        target.FromDatetime(datetime.now(timezone.utc))
        return
    if not isinstance(value, str):
        raise BadInput(f"{name} must be an RFC 3339 timestamp string, e.g. 2026-11-26T10:00:00Z")
    match = RFC3339.fullmatch(value)
    if not match:
        raise BadInput(
            f"{name} is not an RFC 3339 timestamp: {value[:64]!r} "
            "(e.g. 2026-11-26T10:00:00Z or 2026-11-26T11:00:00.250+01:00)"
        )
    year, month, day, hour, minute, second, fraction, sign, offset_hours, offset_minutes = match.groups()
    offset = int(offset_hours or 0) * 60 + int(offset_minutes or 0)  # minutes east of UTC
    second = int(second)
    try:
        if int(offset_minutes or 0) > 59 or offset >= 24 * 60:  # what datetime.timezone refuses
            raise ValueError("offset")
        # A leap second (:60) is read as the last second of its minute.
        local = datetime(int(year), int(month), int(day), int(hour), int(minute), 59 if second == 60 else second)
    except ValueError:
        raise BadInput(f"{name} is not a valid date and time: {value[:64]!r}") from None
    since_epoch = local - _NAIVE_EPOCH
    seconds = since_epoch.days * _SECONDS_PER_DAY + since_epoch.seconds - (-offset if sign == "-" else offset) * 60
    if not _TIMESTAMP_SECONDS[0] <= seconds <= _TIMESTAMP_SECONDS[1]:  # "0001-01-01T00:00:00+01:00" is before year 1
        raise BadInput(f"{name} is out of range: {value[:64]!r}")
    target.seconds = seconds
    target.nanos = int(fraction[:9].ljust(9, "0")) if fraction else 0


def _check_string(name: str, value: str, limit: int | None = MAX_ATTRIBUTE_CHARS) -> None:
    """What PostgreSQL and protobuf would refuse later, refused here with a reason: NUL, lone surrogates, keys too long."""
    if "\x00" in value:
        raise BadInput(f"{name} contains a NUL character")
    if not value.isascii():  # ASCII holds no surrogate: only the rest needs encoding to be checked
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadInput(f"{name} is not valid Unicode (a lone surrogate)") from None
    if limit is not None and len(value) > limit:
        raise BadInput(f"{name} is {len(value)} characters; the limit is {limit}")


def _check_time(name: str, value: Timestamp) -> None:
    try:
        value.ToDatetime(tzinfo=timezone.utc)
    except (OverflowError, ValueError):
        raise BadInput(f"{name} is not a valid timestamp ({value.seconds} s, {value.nanos} ns)") from None


def _validate(event: ContactEvent, max_text_chars: int) -> None:
    if not event.subject.strip():
        raise BadInput("missing `subject`: it must carry the conversation's external id")
    for name in ("id", "source", "subject"):
        _check_string(f"`{name}`", getattr(event, name))
    if event.survey is not None:
        if (event.survey.scale or pb.SURVEY_SCALE_CSAT) not in SURVEY_RANGES:
            raise BadInput(f"data.scale {event.survey.scale} is unknown: expected CSAT or NPS")
        _check_string("data.comment", event.survey.comment, None)
        _check_string("data.customer.id", event.survey.customer.id)
        _check_time("data.answered_at", event.survey.answered_at)
        low, high = SURVEY_RANGES[event.survey.scale or pb.SURVEY_SCALE_CSAT]
        if not low <= event.survey.score <= high:
            raise BadInput(f"data.score {event.survey.score} is out of range: {low} to {high} on this scale")
        if len(event.survey.comment) > max_text_chars:
            raise BadInput(f"data.comment is {len(event.survey.comment)} characters; the limit is {max_text_chars}")
        return
    message = event.message
    assert message is not None  # a contact event carries a survey or a message
    customer, text = message.customer, message.text
    if message.channel not in CHANNEL_NAMES:
        raise BadInput("data.channel is missing or unknown")
    if not customer.id.strip():
        raise BadInput("data.customer.id is required")
    if not event._data_checked:
        for name in ("id", "language", "tier", "phone", "time_zone"):
            _check_string(f"data.customer.{name}", getattr(customer, name))
    if customer.phone and customer_contact.phone_number(customer.phone) is None:
        raise BadInput("data.customer.phone is not a phone number (6 to 15 digits, e.g. +33612345678)")
    if customer.time_zone and customer_contact.time_zone(customer.time_zone) is None:
        raise BadInput(f"data.customer.time_zone is not an IANA time zone or a UTC offset: {customer.time_zone!r}")
    if not event._data_checked:
        _check_string("data.text", text, None)
        _check_time("data.sent_at", message.sent_at)
    if customer.language and not LANGUAGE_TAG.match(customer.language):
        raise BadInput(f"data.customer.language is not a language tag: {customer.language!r}")
    if not text.strip():
        raise BadInput("data.text is empty")
    if len(text) > max_text_chars:
        raise BadInput(f"data.text is {len(text)} characters; the limit is {max_text_chars}")


def structured(
    event_type: str, source: str, event_id: str, subject: str, data: dict, time: datetime | None = None
) -> bytes:
    doc = {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "source": source,
        "type": event_type,
        "subject": subject,
        "time": (time or datetime.now(timezone.utc)).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": data,
    }
    return json.dumps(doc, ensure_ascii=False).encode()


def reply(
    event_type: str, source: str, reply_id: str, conversation_id: str, text: str, language: str, **data
) -> Record:
    """A message to the customer on relais.replies.v1, keyed by conversation."""
    value = structured(event_type, source, reply_id, conversation_id, {"text": text, "language": language, **data})
    return Record(topics.REPLIES, conversation_id.encode(), value, [("content-type", STRUCTURED.encode())])


def contact_message(
    conversation_id: str,
    customer_id: str,
    text: str,
    *,
    channel: str = "chat",
    language: str | None = None,
    tier: str | None = None,
    event_id: str | None = None,
    source: str = "urn:relais:demo",
    sent_at: datetime | None = None,
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A structured relais.contact.message.v1 event, as an enterprise system would send it."""
    customer = {"id": customer_id}
    if language:
        customer["language"] = language
    if tier:
        customer["tier"] = tier
    sent = (sent_at or datetime.now(timezone.utc)).isoformat().replace("+00:00", "Z")
    value = structured(
        CONTACT_MESSAGE,
        source,
        event_id or str(uuid.uuid4()),
        conversation_id,
        {"channel": channel, "customer": customer, "text": text, "sent_at": sent},
    )
    return value, [("content-type", STRUCTURED.encode())]


def contact_survey(
    conversation_id: str,
    score: int,
    *,
    scale: str = "csat",
    comment: str = "",
    customer_id: str = "",
    event_id: str | None = None,
    source: str = "urn:relais:demo",
    answered_at: datetime | None = None,
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A structured relais.contact.survey.v1 event: the customer's answer to the survey of a conversation."""
    data = {"score": score, "scale": scale}
    if comment:
        data["comment"] = comment
    if customer_id:
        data["customer"] = {"id": customer_id}
    if answered_at:
        data["answered_at"] = answered_at.isoformat().replace("+00:00", "Z")
    value = structured(CONTACT_SURVEY, source, event_id or str(uuid.uuid4()), conversation_id, data, answered_at)
    return value, [("content-type", STRUCTURED.encode())]


SURVEY_QUESTION = {
    "fr": "Êtes-vous satisfait de cet échange ? Notez-le de 1 (pas du tout) à 5 (tout à fait).",
    "en": "How satisfied are you with this conversation? Rate it from 1 (not at all) to 5 (completely).",
}


def survey_invitation(language: str) -> dict:
    """What a reply carries to ask for a relais.contact.survey.v1 answer (CSAT, 1 to 5)."""
    return {
        "type": CONTACT_SURVEY,
        "scale": "csat",
        "min": 1,
        "max": 5,
        "question": SURVEY_QUESTION.get(language, SURVEY_QUESTION["en"]),
    }


def survey_request(source: str, reply_id: str, conversation_id: str, language: str) -> Record:
    """Asks the customer for a survey answer when an agent closes the contact."""
    invitation = survey_invitation(language)
    return reply(REPLY_SURVEY, source, reply_id, conversation_id, invitation["question"], language, survey=invitation)
