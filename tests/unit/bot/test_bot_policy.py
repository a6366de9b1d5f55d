"""The bot/human decision: each reason fires on its own, with the shipped catalogue's limits."""

import pytest

from relais.bot import policy
from relais.bot.policy import ANSWER, CLARIFY, HANDOFF, ConversationState
from relais.classifier.catalogue import load_catalogue
from relais.common.pb import conversation_pb2 as pb

CATALOGUE = load_catalogue()
FIRST = ConversationState()


def first(predicate):
    return next(i for i in CATALOGUE.intents.values() if predicate(i))


BOT_INTENT = first(lambda i: i.bot_allowed and i.tiers is None and i.max_amount is None)
PEOPLE_INTENT = first(lambda i: not i.bot_allowed)
CLARIFIABLE = first(lambda i: i.bot_allowed and i.on_low_confidence == "clarify")


def turn(
    intent=BOT_INTENT.id,
    confidence=0.9,
    oos=False,
    best_guess=None,
    anger=False,
    distress=False,
    human=False,
    score=0.0,
    tier="",
    amount=0.0,
    text="message",
    language="",
):
    return pb.Turn(
        text=text,
        language=language,
        customer=pb.Customer(tier=tier),
        classification=pb.Classification(
            intent="" if oos else intent,
            best_guess=best_guess or intent,
            confidence=confidence,
            out_of_scope=oos,
            asks_for_human=human,
            amount=amount,
            sentiment=pb.Sentiment(score=score, anger=anger, distress=distress),
        ),
    )


def handoff_reasons(t, state=FIRST):
    decision = policy.decide(t, state, CATALOGUE)
    assert decision.action == HANDOFF, decision
    return decision.reasons


def test_a_calm_in_scope_request_the_bot_may_handle_is_answered():
    assert policy.decide(turn(), FIRST, CATALOGUE) == policy.Decision(ANSWER, BOT_INTENT.id)


def test_explicit_request_for_a_person():
    assert handoff_reasons(turn(human=True)) == (pb.HANDOFF_REASON_CUSTOMER_REQUEST,)


def test_anger():
    assert handoff_reasons(turn(anger=True, score=-0.8)) == (pb.HANDOFF_REASON_ANGER,)


def test_distress():
    assert handoff_reasons(turn(distress=True, score=-0.6)) == (pb.HANDOFF_REASON_DISTRESS,)


def test_a_customer_getting_angrier_is_handed_off_though_no_message_is_angry():
    calm_then_worse = ConversationState(sentiment_scores=(0.2, -0.1, -0.4))
    assert policy.decide(turn(score=0.1), ConversationState(sentiment_scores=(0.1, 0.1)), CATALOGUE).action == ANSWER
    assert policy.decide(turn(score=-0.2), ConversationState(sentiment_scores=(0.0, -0.1)), CATALOGUE).action == ANSWER
    assert handoff_reasons(turn(score=-0.7), calm_then_worse) == (pb.HANDOFF_REASON_ESCALATING_SENTIMENT,)


def test_out_of_scope_without_a_plausible_guess():
    assert handoff_reasons(turn(oos=True, confidence=0.05)) == (pb.HANDOFF_REASON_OUT_OF_SCOPE,)


def test_an_implausible_guess_does_not_travel_with_the_hand_off_a_plausible_one_does():
    # The restaurant tip "guessed" as store_locator must not reach routing's skills or the advisor's suggestions.
    assert policy.decide(turn(oos=True, confidence=0.05), FIRST, CATALOGUE).intent == ""
    unsure_again = ConversationState(clarifications=1)
    decision = policy.decide(turn(intent=CLARIFIABLE.id, oos=True, confidence=0.25), unsure_again, CATALOGUE)
    assert (decision.reasons, decision.intent) == ((pb.HANDOFF_REASON_LOW_CONFIDENCE,), CLARIFIABLE.id)


def test_below_threshold_the_bot_asks_once_then_hands_off():
    unsure = turn(intent=CLARIFIABLE.id, oos=True, confidence=0.25)
    decision = policy.decide(unsure, FIRST, CATALOGUE)
    assert (decision.action, decision.intent) == (CLARIFY, CLARIFIABLE.id)
    asked = ConversationState(clarifications=1, pending_clarification=CLARIFIABLE.id)
    assert handoff_reasons(unsure, asked) == (pb.HANDOFF_REASON_LOW_CONFIDENCE,)


def test_yes_to_the_clarifying_question_answers_the_intent():
    asked = ConversationState(clarifications=1, pending_clarification=CLARIFIABLE.id)
    for answer in ("oui", "Oui, c'est ça !", "yes please", "Yep"):
        decision = policy.decide(turn(oos=True, confidence=0.05, text=answer), asked, CATALOGUE)
        assert (decision.action, decision.intent) == (ANSWER, CLARIFIABLE.id), answer
    assert policy.decide(turn(oos=True, confidence=0.05, text="non pas du tout"), asked, CATALOGUE).action == HANDOFF


def test_intent_kept_for_people():
    assert handoff_reasons(turn(intent=PEOPLE_INTENT.id)) == (pb.HANDOFF_REASON_NOT_BOT_ALLOWED,)


def test_tier_the_catalogue_keeps_for_people():
    intent = first(lambda i: i.bot_allowed and i.tiers is not None)
    served = sorted(intent.tiers)[0]
    assert policy.decide(turn(intent=intent.id, tier=served), FIRST, CATALOGUE).action == ANSWER
    assert handoff_reasons(turn(intent=intent.id, tier="tier-not-in-catalogue")) == (pb.HANDOFF_REASON_TIER_NOT_SERVED,)


def test_amount_above_the_intents_limit():
    intent = first(lambda i: i.bot_allowed and i.max_amount is not None and i.tiers is None)
    assert policy.decide(turn(intent=intent.id, amount=intent.max_amount), FIRST, CATALOGUE).action == ANSWER
    assert handoff_reasons(turn(intent=intent.id, amount=intent.max_amount + 1)) == (
        pb.HANDOFF_REASON_AMOUNT_ABOVE_LIMIT,
    )


def test_bot_turn_limit_of_the_intent():
    used = ConversationState(bot_turns_by_intent={BOT_INTENT.id: BOT_INTENT.max_bot_turns})
    assert handoff_reasons(turn(), used) == (pb.HANDOFF_REASON_BOT_TURN_LIMIT,)


def test_two_failed_attempts_hand_off():
    assert not policy.after_failed_attempt(1, BOT_INTENT.id).handoff
    assert policy.after_failed_attempt(2, BOT_INTENT.id).reasons == (pb.HANDOFF_REASON_REPEATED_FAILURE,)


def test_every_reason_that_applies_is_kept_the_request_first():
    reasons = handoff_reasons(turn(intent=PEOPLE_INTENT.id, human=True, anger=True, score=-0.9))
    assert reasons == (pb.HANDOFF_REASON_CUSTOMER_REQUEST, pb.HANDOFF_REASON_ANGER, pb.HANDOFF_REASON_NOT_BOT_ALLOWED)


@pytest.mark.parametrize("language", ["es", "de", "it", "pt", "nl", "pl"])
def test_a_request_the_bot_could_answer_in_a_language_it_does_not_serve_goes_to_a_person(language):
    decision = policy.decide(turn(language=language), FIRST, CATALOGUE)
    assert decision == policy.Decision(
        HANDOFF, BOT_INTENT.id, (pb.HANDOFF_REASON_LANGUAGE_NOT_SERVED,), f"language {language} not served"
    )


def test_in_a_language_not_served_the_bot_neither_clarifies_nor_guesses_the_intent():
    unsure = turn(intent=CLARIFIABLE.id, oos=True, confidence=0.2, language="es")
    assert policy.decide(unsure, FIRST, CATALOGUE) == policy.Decision(
        HANDOFF, "", (pb.HANDOFF_REASON_LANGUAGE_NOT_SERVED,), "language es not served"
    )
    # A request for a person or anger stays the main reason.
    assert handoff_reasons(turn(human=True, anger=True, score=-0.9, language="de")) == (
        pb.HANDOFF_REASON_CUSTOMER_REQUEST,
        pb.HANDOFF_REASON_ANGER,
        pb.HANDOFF_REASON_LANGUAGE_NOT_SERVED,
    )


@pytest.mark.parametrize("language", ["fr", "en", ""])
def test_served_languages_are_answered(language):
    assert policy.decide(turn(language=language), FIRST, CATALOGUE).action == ANSWER


@pytest.mark.parametrize(
    "text, expected",
    [
        ("oui", True),
        ("Ouais", True),
        ("exactement !", True),
        ("yes", True),
        ("that's it", True),
        ("non", False),
        ("no", False),
        ("pas du tout", False),
    ],
)
def test_affirmative(text, expected):
    assert policy.is_affirmative(text) is expected


def test_state_is_derived_from_the_conversation_context():
    context = pb.ConversationContext(
        turns=[pb.Turn(classification=pb.Classification(sentiment=pb.Sentiment(score=s))) for s in (0.2, -0.1, -0.5)],
        bot_attempts=[
            pb.BotAttempt(intent="a", resolved=True),
            pb.BotAttempt(intent="b", resolved=False),
            pb.BotAttempt(intent="b", clarification=True),
        ],
    )
    state = ConversationState.from_context(context)
    assert state.sentiment_scores == pytest.approx((0.2, -0.1))  # the current turn is not history
    assert state.bot_turns_by_intent == {"a": 1, "b": 2}
    assert (state.clarifications, state.pending_clarification, state.failed_attempts) == (1, "b", 1)
