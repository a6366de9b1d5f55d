"""Order numbers are what the bot's lookups need: the redactor keeps them even when their digits look
like a phone or a card number, and still redacts the personal data around them."""

import re

import pytest

from relais.common.lookup_words import ORDER_NUMBER as ORDER_ID, order_numbers
from relais.common.redact import redact


@pytest.mark.parametrize(
    "text",
    [
        "Où en est ma commande CMD-0612345678 ?",
        "order ORD 0712345678 please",
        "cmd-123456",
        "Where is CMD-424242?",
    ],
)
def test_order_numbers_are_kept(text):
    assert redact(text) == text
    assert ORDER_ID.search(redact(text))


def test_personal_data_next_to_an_order_number_still_goes():
    text = "Commande CMD-123456, carte 4111 1111 1111 1111, tél. 06 12 34 56 78, mail a.b@example.fr"
    redacted = redact(text)
    assert redacted == "Commande CMD-123456, carte [CARD], tél. [PHONE], mail [EMAIL]"
    order = ORDER_ID.search(redacted)
    assert order is not None and order.group(1) == "123456"


def test_every_order_number_the_bot_reads_is_kept():
    # One pattern (relais.common.lookup_words) for the bot's lookups and for what redaction keeps.
    for sample in ("CMD-1234", "CMD 1234567890", "ord-98765"):
        assert ORDER_ID.fullmatch(sample) and redact(sample) == sample
    assert not re.fullmatch(ORDER_ID, "CMD-12345678901")


def test_order_numbers_are_read_in_the_form_the_lookup_knows():
    # The bot looks up and agent assist quotes one written form, however the customer typed it.
    assert order_numbers("cmd 123456 puis ORD-0042 et CMD-654321") == ["CMD-123456", "CMD-0042", "CMD-654321"]
    assert order_numbers("I ordered 3 items, CMD-12") == []
