"""Churn risk, several requests in one message, and requests needing judgement: the pure detectors on hand-worked
messages, the catalogue sections that declare them, the classifier that attaches them and the policy's reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from relais.bot.policy import HANDOFF, ConversationState, decide
from relais.classifier.catalogue import CatalogueError, load_catalogue
from relais.classifier.domain import classify, to_classification_proto
from relais.classifier.signals import (
    ChurnCues,
    churn_risk,
    compile_cue,
    distinct_requests,
    matching_cues,
    segments,
)
from relais.common.pb import conversation_pb2 as pb

ISSUE_EXAMPLE = (
    "Je suis client depuis 12 ans et je pense sérieusement à partir chez un concurrent, "
    "qu'est-ce que vous pouvez faire pour moi ?"
)


def _cues(*cues: str) -> list:
    return [compile_cue(c) for c in cues]


# --- the cue syntax ---


@pytest.mark.parametrize(
    ("cue", "text", "found"),
    [
        ("changer de banque", "Je veux CHANGER de banque.", True),
        ("changer de banque", "changer de banquier", False),  # whole words
        ("ferme* * compte*", "je ferme tous mes comptes", True),  # `*` = up to two words, `word*` any ending
        ("ferme* * compte*", "je ferme la fenêtre de mon compte", False),  # three words between: no
        ("client depuis #", "client depuis 2009", True),
        ("client depuis #", "client depuis longtemps", False),
        ("résili*", "Comment je RESILIE l'assurance ?", True),  # accents and case folded
        ("close * account*", "how do I close this window", False),
        ("close * account*", "close my account, please", True),
    ],
)
def test_a_cue_matches_words_gaps_endings_and_numbers(cue, text, found):
    assert bool(matching_cues(text, _cues(cue))) is found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("je ne vais pas fermer mon compte", False),
        ("Je n'ai pas l'intention de fermer mon compte", False),
        ("I won't close my account", False),
        ("I have no intention of closing my account", False),
        ("si vous ne faites rien, je ferme mon compte", True),  # a threat: the negation is in the condition
        ("if you don't fix this I'll close my account", True),
        ("pas de réponse depuis un mois donc je ferme mon compte", True),  # the negation is far before
    ],
)
def test_a_negation_before_the_cue_cancels_it_a_threat_does_not(text, found):
    assert bool(matching_cues(text, _cues("ferme* * compte*", "close * account*", "closing * account*"))) is found


def test_a_cue_without_words_is_refused():
    with pytest.raises(ValueError, match="no words"):
        compile_cue("* #")


# --- churn risk with the shipped catalogue's cues ---

SHIPPED = load_catalogue()


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (ISSUE_EXAMPLE, "fr"),
        ("Votre concurrent me propose 3 mois gratuits", "fr"),
        ("Je vais clôturer mon compte si ça continue", "fr"),
        ("Client fidèle depuis 2005 et franchement déçu", "fr"),
        ("I'm switching banks next month", "en"),
        ("A competitor offered me a better rate", "en"),
        ("Customer since 2010 and really disappointed", "en"),
        ("I want to cancel my subscription", "en"),
    ],
)
def test_churn_is_recognised(text, language):
    assert churn_risk(text, language, SHIPPED.churn_cues)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Annulez ma commande CMD-123456 svp", "fr"),  # cancelling an order is not leaving us
        ("Je suis client depuis 12 ans, quel est mon solde ?", "fr"),  # loyal, not disappointed
        ("Je ne compte pas changer de banque, je veux mon solde", "fr"),
        ("how do I close this window", "en"),
        ("cancel my order please", "en"),
        ("I'm leaving on holiday, when do you close?", "en"),
        ("I don't want to close my account, just to know my balance", "en"),
    ],
)
def test_ordinary_uses_and_negations_are_not_churn(text, language):
    assert not churn_risk(text, language, SHIPPED.churn_cues)


def test_loyalty_alone_or_disappointment_alone_is_not_churn():
    cues = ChurnCues(
        loyalty={"en": tuple(_cues("customer for #"))}, disappointment={"en": tuple(_cues("disappointed"))}
    )
    assert not churn_risk("customer for 12 years", "en", cues)
    assert not churn_risk("disappointed by the delay", "en", cues)
    assert churn_risk("customer for 12 years and disappointed", "en", cues)
    assert not churn_risk("anything", "en", ChurnCues())  # no section: never


# --- several requests ---


def test_segments_split_at_sentences_and_request_connectors_only():
    assert segments("What's my balance? Also I want to change my address") == [
        "what's my balance",
        "i want to change my address",
    ]
    assert segments("Où est ma commande et à quelle heure ferme le magasin ?") == [
        "ou est ma commande",
        "a quelle heure ferme le magasin",
    ]
    # "and" inside one request is no boundary; a short part joins the next one
    assert segments("Can I take the coat back and get another size?") == [
        "can i take the coat back and get another size"
    ]
    assert segments("Bonjour. Mon solde svp") == ["bonjour mon solde svp"]
    # Details given with a request (redacted data) are not a request of their own
    assert segments("Où en est ma commande CMD-123456 ? Mon mail : [EMAIL]") == [
        "ou en est ma commande cmd-123456 mon mail : [email]"
    ]


def test_distinct_requests_needs_two_sure_and_different_intents():
    threshold = {"a": 0.3, "b": 0.3, "strict": 0.95, "person": 0.3}.__getitem__
    assert distinct_requests([("a", 0.9), ("b", 0.85)], threshold) == ["a", "b"]
    assert distinct_requests([("a", 0.9), ("a", 0.99)], threshold) == ["a"]  # the same request twice
    assert distinct_requests([("a", 0.9), ("b", 0.6)], threshold) == ["a"]  # under the floor of 0.8
    assert distinct_requests([("a", 0.9), ("strict", 0.9)], threshold) == ["a"]  # under the intent's threshold
    assert distinct_requests([("a", 0.9), (None, 0.0)], threshold) == ["a"]
    assert distinct_requests([("a", 0.9), ("person", 1.0)], threshold, frozenset({"person"})) == ["a"]


# --- the catalogue ---


def _catalogue(tmp_path: Path, top: str = "", intent_extra: str = "") -> Path:
    path = tmp_path / "catalogue.yaml"
    examples = '    examples:\n      fr: ["Une chose", "Une autre chose"]\n      en: ["One thing", "Another thing"]\n'
    path.write_text(
        'version: "t.1"\nlanguages: [fr, en]\ndefault_threshold: 0.3\n'
        + top
        + "intents:\n  - id: dispute\n    description: A disputed payment.\n    bot_allowed: false\n"
        + intent_extra
        + "    lookups: []\n    skill: billing\n    limits: {max_bot_turns: 0}\n"
        + "    escalation: {priority: 0, on_low_confidence: handoff}\n"
        + '    clarify: {fr: "Contestation ?", en: "Dispute?"}\n'
        + examples
    )
    return path


def test_the_catalogue_declares_churn_cues_and_judgement(tmp_path):
    top = 'churn_risk:\n  leaving:\n    fr: ["changer de banque"]\n    en: ["switch* bank*"]\n'
    catalogue = load_catalogue(_catalogue(tmp_path, top, "    needs_judgement: true\n"))
    assert catalogue.get("dispute").needs_judgement
    assert churn_risk("je veux changer de banque", "fr", catalogue.churn_cues)
    assert not churn_risk("je veux changer de carte", "fr", catalogue.churn_cues)
    assert not load_catalogue(_catalogue(tmp_path)).get("dispute").needs_judgement


def test_bad_churn_cues_and_judgement_flags_are_reported_with_their_line(tmp_path):
    top = (
        'churn_risk:\n  leaving:\n    de: ["weg"]\n    fr: ["*"]\n  loyalty:\n    en: ["customer for #"]\n  oops: {}\n'
    )
    with pytest.raises(CatalogueError) as error:
        load_catalogue(_catalogue(tmp_path, top, "    needs_judgement: maybe\n"))
    message = str(error.value)
    assert "catalogue.yaml:6: churn_risk.leaving: language 'de' is not in languages" in message
    assert "churn_risk.leaving.fr: cue '*' has no words" in message
    assert "churn_risk: unknown key 'oops'" in message
    assert "loyalty and disappointment go together" in message
    assert "needs_judgement must be true or false, got 'maybe'" in message


def test_judgement_on_an_intent_the_bot_answers_is_refused(tmp_path):
    path = _catalogue(tmp_path, intent_extra="    needs_judgement: true\n")
    path.write_text(
        path.read_text()
        .replace("bot_allowed: false", "bot_allowed: true")
        .replace("lookups: []", "lookups: [opening_hours]")
        .replace("max_bot_turns: 0", "max_bot_turns: 1")
    )
    with pytest.raises(CatalogueError, match="needs_judgement sends every such message to a person"):
        load_catalogue(path)


# --- through the classifier and the policy ---


def _decide(text: str, language: str, catalogue, model):
    result = classify(text, language, model, catalogue)
    turn = pb.Turn(text=text, language=language, classification=to_classification_proto(result, catalogue))
    return result, decide(turn, ConversationState(), catalogue)


def test_the_issue_example_is_handed_off_for_churn(catalogue, model):
    result, decision = _decide(ISSUE_EXAMPLE, "fr", catalogue, model)
    assert result.churn_risk
    assert decision.action == HANDOFF and decision.reasons[0] == pb.HANDOFF_REASON_CHURN_RISK


def test_two_requests_in_one_message_are_handed_off_with_both(catalogue, model):
    text = "What's my balance? And also I want to change my postal address"
    result, decision = _decide(text, "en", catalogue, model)
    assert {result.intent, *result.other_intents} == {"account_balance", "update_personal_details"}
    assert decision.action == HANDOFF and pb.HANDOFF_REASON_MULTIPLE_REQUESTS in decision.reasons
    assert "account_balance" in decision.detail and "update_personal_details" in decision.detail
    # one request, even with "and" in it, stays with the bot
    result, decision = _decide("Where is my order CMD-330022 and when will it get here?", "en", catalogue, model)
    assert result.other_intents == () and decision.action != HANDOFF


def test_an_intent_needing_judgement_hands_off_with_that_reason(catalogue):
    judged = next(i for i in catalogue if i.needs_judgement)
    turn = pb.Turn(text="x", classification=pb.Classification(intent=judged.id, best_guess=judged.id, confidence=0.9))
    decision = decide(turn, ConversationState(), catalogue)
    assert decision.reasons == (pb.HANDOFF_REASON_NEEDS_JUDGEMENT,)
