"""Routing rules, as plain functions."""

from relais.common.pb import conversation_pb2 as pb
from relais.routing import rules


def context(intent="disputed_payment", tier="", reason=pb.HANDOFF_REASON_CUSTOMER_REQUEST, language="fr"):
    return pb.ConversationContext(intent=intent, language=language, reason=reason, customer=pb.Customer(tier=tier))


def test_requirement_takes_skill_from_intent_and_priority_from_tier_and_emotion():
    skills = {"disputed_payment": "billing"}
    assert rules.requirement(context(), skills) == rules.Requirement("fr", "billing", 0)
    assert rules.requirement(context(tier="VIP"), skills).priority == 20
    assert rules.requirement(context(tier="vip", reason=pb.HANDOFF_REASON_ANGER), skills).priority == 25
    assert rules.requirement(context(intent="unknown"), skills).skill == rules.GENERAL
    escalated = context(reason=pb.HANDOFF_REASON_CUSTOMER_REQUEST)
    escalated.reasons[:] = [pb.HANDOFF_REASON_CUSTOMER_REQUEST, pb.HANDOFF_REASON_ESCALATING_SENTIMENT]
    escalated.priority = 7
    assert rules.requirement(escalated, skills).priority == 7 + rules.EMOTION_PRIORITY


def test_eligibility_needs_the_language_and_the_skill_or_general():
    need = rules.Requirement("fr", "billing", 0)
    assert rules.eligible(["fr"], ["billing"], need)
    assert rules.eligible(["fr", "en"], ["general"], need)
    assert not rules.eligible(["en"], ["billing", "general"], need)
    assert not rules.eligible(["fr"], ["orders"], need)


def test_expected_wait_grows_with_position():
    assert rules.expected_wait_seconds(1, None) == rules.DEFAULT_HANDLE_SECONDS
    assert rules.expected_wait_seconds(3, 100.0) == 300
    assert rules.expected_wait_seconds(4, 100.0, available_soon=2) == 200
