"""How to reach a customer again: the number to call back on, and the customer's time zone.

The number is personal data. Intake takes it out of the inbound message before anything is stored or published:
`take_phone` clears `data.customer.phone` from the message (so it never travels in a Turn), and a number the
customer writes is redacted to [PHONE] in the text like any other. `keep` stores the number in one place only,
`conversations.callback_phone`, when it was given with the event, or written by the customer while routing asks
for one (a callback was chosen and no number is known). Routing copies it into the callback task (`tasks.callback_phone`),
shown to the advisor on the callback offer; retention erases both with the conversation's transcript.
"""

import re
from datetime import timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from relais.common.pb import conversation_pb2 as pb
from relais.common.redact import PLACEHOLDERS, find_personal_data, is_phone_number

PHONE_CHARS = re.compile(r"^\+?[0-9 .()/\u00a0\u202f-]+$")
OFFSET = re.compile(r"^([+-])([01][0-9]|2[0-3]):?([0-5][0-9])$")
TRAILING_OFFSET = re.compile(r"([+-])([0-9]{2}):?([0-9]{2})$")
# Routing asked this conversation's customer for a number: a callback task waiting for it.
ASKED = (
    "SELECT EXISTS (SELECT FROM tasks WHERE conversation_id = $1 AND status IN ('queued', 'offered')"
    " AND kind = 'handoff' AND phone_asked_at IS NOT NULL)"
)


def phone_number(value: str) -> str | None:
    """A phone number as given ("+33 6 12 34 56 78", "06.12.34.56.78", "0033 6 12 34 56 78") in a plain form
    ("+33612345678", "0612345678"), or None when it is not one: an international number of a possible length for its
    country, or a valid national number of a region of RELAIS_PHONE_REGIONS (libphonenumber's plans, as redaction)."""
    if not PHONE_CHARS.match(value or "") or not is_phone_number(value, any_grouping=True):
        return None
    digits = re.sub(r"[^0-9]", "", value)
    if value.strip().startswith("+") or digits.startswith("00"):
        # E.164, without the trunk prefix some write after the country code ("+33 (0)1 ...", "+33 06 ...").
        number = phonenumbers.parse("+" + (digits if value.strip().startswith("+") else digits[2:]), None)
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return digits


def numbers_in(text: str) -> list[str]:
    """The phone numbers redaction finds in a text, in order."""
    found = [text[f.start : f.end] for f in find_personal_data(text) if f.kind == "phone"]
    return [n for n in map(phone_number, found) if n]


def time_zone(value: str) -> tzinfo | None:
    """An IANA time zone ("Europe/Paris") or a UTC offset ("+02:00"); None when it is neither."""
    match = OFFSET.match(value or "")
    if match:
        offset = timedelta(hours=int(match[2]), minutes=int(match[3]))
        return timezone(-offset if match[1] == "-" else offset)
    if not value or "\x00" in value or value.startswith(("/", ".")) or ".." in value:
        return None
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def offset_of(sent_at: str) -> str:
    """The UTC offset written in an RFC 3339 time ("2026-12-07T10:00:00+01:00" -> "+01:00"); '' for none or Z or +00:00,
    which senders write for UTC whatever the customer's zone."""
    match = TRAILING_OFFSET.search(sent_at) if sent_at and sent_at[-1] not in "Zz" else None
    if not match or (match[2], match[3]) == ("00", "00"):
        return ""
    return f"{match[1]}{match[2]}:{match[3]}"


def take_phone(message: pb.ContactMessage) -> str:
    """The number given with the event (data.customer.phone), taken out of the message so it never travels in a turn."""
    given = message.customer.phone
    message.customer.ClearField("phone")
    return (phone_number(given) or "") if given else ""


async def keep(conn, conversation_id: str, given_phone: str, text: str, redacted_text: str) -> None:
    """In intake's transaction, once the conversation row is written: the number to call back goes to
    conversations.callback_phone — the one given with the event, else the first the customer wrote while routing
    asks for one."""
    phone = given_phone
    if not phone and PLACEHOLDERS["phone"] in redacted_text and await conn.fetchval(ASKED, conversation_id):
        written = numbers_in(text)
        phone = written[0] if written else ""
    if phone:
        await conn.execute(
            "UPDATE conversations SET callback_phone = $2 WHERE conversation_id = $1", conversation_id, phone
        )
