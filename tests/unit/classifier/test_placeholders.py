"""The classifier reads redacted text: placeholders ([CARD], [IBAN], [EMAIL], [PHONE]) must not change
the intent, nor read as shouting (they are capitals relais wrote, not the customer)."""

import pytest

from relais.classifier.domain import classify
from relais.classifier.sentiment import analyse_sentiment
from relais.common.redact import redact

# (raw message, expected intent); each has personal data the redactor replaces.
MESSAGES = [
    ("j'ai perdu ma carte 4970 1012 3456 7893", "lost_or_stolen_card"),
    ("Ma carte 4970101234567893 a été volée, appelez-moi au 06 12 34 56 78", "lost_or_stolen_card"),
    ("My card 4111 1111 1111 1111 was stolen, please block it", "lost_or_stolen_card"),
    ("Mon IBAN est FR76 3000 6000 0112 3456 7890 189, pourquoi mon virement n'est pas arrivé ?", "transfer_status"),
    ("Où en est ma commande CMD-123456 ? mon mail est paul.martin@orange.fr", "order_status"),
    ("my email is jane.doe@example.com, I want to change my address", "update_personal_details"),
]


@pytest.mark.parametrize("raw,intent", MESSAGES)
def test_redacted_message_keeps_its_intent(raw, intent, model, catalogue):
    redacted = redact(raw)
    assert redacted != raw and "[" in redacted
    assert classify(raw, None, model, catalogue).intent == intent
    result = classify(redacted, None, model, catalogue)
    assert result.intent == intent, redacted
    assert not result.out_of_scope


def test_placeholder_alone_is_lost_card(model, catalogue):
    assert classify("j'ai perdu ma carte [CARD]", None, model, catalogue).intent == "lost_or_stolen_card"


@pytest.mark.parametrize(
    "text,language",
    [
        ("Ma carte [CARD] est bloquée, rappelez-moi au [PHONE]", "fr"),
        ("my email [EMAIL] and phone [PHONE], I lost my card [CARD]", "en"),
        ("[IBAN] [CARD] [EMAIL] [PHONE]", "fr"),
    ],
)
def test_placeholders_are_not_shouting(text, language):
    assert not analyse_sentiment(text, language).anger


def test_real_shouting_still_counts():
    assert analyse_sentiment("MY CARD IS BLOCKED AGAIN, FIX IT NOW [PHONE]", "en").anger
