"""The hand-off policy, as plain rules."""

import pytest

from relais.bot import policy
from relais.common.pb import conversation_pb2 as pb

ALLOWED = {"opening_hours", "order_status", "account_balance"}


def turn(intent="opening_hours", confidence=0.9, oos=False, anger=False, distress=False, human=False):
    return pb.Turn(classification=pb.Classification(
        intent="" if oos else intent, best_guess=intent, confidence=confidence, out_of_scope=oos, asks_for_human=human,
        sentiment=pb.Sentiment(anger=anger, distress=distress)))


@pytest.mark.parametrize("t, reason", [
    (turn(human=True, anger=True), pb.HANDOFF_REASON_CUSTOMER_REQUEST),
    (turn(anger=True), pb.HANDOFF_REASON_ANGER),
    (turn(distress=True), pb.HANDOFF_REASON_DISTRESS),
    (turn(oos=True, confidence=0.2), pb.HANDOFF_REASON_OUT_OF_SCOPE),
    (turn(intent="disputed_payment"), pb.HANDOFF_REASON_NOT_BOT_ALLOWED),
])
def test_hand_off_reasons(t, reason):
    decision = policy.decide(t, ALLOWED)
    assert decision.handoff and decision.reason == reason


def test_a_calm_in_scope_allowed_request_stays_with_the_bot():
    assert policy.decide(turn("order_status"), ALLOWED) == policy.Decision(False, intent="order_status")


def test_two_failed_attempts_hand_off():
    assert not policy.after_failed_attempt(1, "order_status").handoff
    second = policy.after_failed_attempt(2, "order_status")
    assert second.handoff and second.reason == pb.HANDOFF_REASON_REPEATED_FAILURE
