"""A hand-off's reason can decide the skill it needs: a customer who may leave us (CHURN_RISK) goes to retention
whatever their intent, at the level the rules ask, and overflows like any other task."""

import pytest
import yaml

from relais.classifier.catalogue import load_catalogue
from relais.common.pb import conversation_pb2 as pb
from relais.routing import rules

CATALOGUE = load_catalogue()
SKILLS = {intent.id: intent.skill for intent in CATALOGUE}
RULES = rules.parse_rules(yaml.safe_load(rules.RULES_PATH.read_text()), known_intents=CATALOGUE.intents)


def churn(intent="account_balance", *more):
    reasons = [pb.HANDOFF_REASON_CHURN_RISK, *more]
    return pb.ConversationContext(intent=intent, language="fr", reason=reasons[0], reasons=reasons)


def agent(agent_id, **levels):
    return rules.Agent(agent_id, frozenset({"fr"}), levels, {"chat": 2}, {}, 0.0, "available")


def test_churn_requires_retention_instead_of_the_intents_skill_and_comes_first():
    need = rules.requirement(churn(), RULES, SKILLS)
    assert dict(need.required) == {"retention": 2}
    assert (
        need.priority
        > rules.requirement(
            pb.ConversationContext(intent="account_balance", language="fr", reason=pb.HANDOFF_REASON_NOT_BOT_ALLOWED),
            RULES,
            SKILLS,
        ).priority
    )
    # with a request for a person or out of scope too, still retention
    both = churn("", pb.HANDOFF_REASON_CUSTOMER_REQUEST, pb.HANDOFF_REASON_OUT_OF_SCOPE)
    assert dict(rules.requirement(both, RULES, SKILLS).required) == {"retention": 2}
    # other reasons keep their intent's skill
    several = pb.ConversationContext(
        intent="account_balance", language="fr", reasons=[pb.HANDOFF_REASON_MULTIPLE_REQUESTS]
    )
    assert dict(rules.requirement(several, RULES, SKILLS).required) == {"billing": 1}


def test_a_churn_task_goes_to_retention_then_overflows_when_nobody_has_it():
    need = rules.requirement(churn(), RULES, SKILLS)
    task = rules.Task("t", need.language, need.channel, need.required, need.priority, 0.0, need.preferred)
    keeper, banker = agent("keeper", retention=2), agent("banker", billing=3, general=1)
    assert rules.best_agent(task, [banker, keeper], RULES) is keeper
    assert rules.best_agent(task, [banker], RULES) is None
    # nobody with retention signed in: widened at once to the stage where someone could take it ("any" queue)
    assert rules.widened_stage(task, [banker], RULES) == len(RULES.overflow)


def test_skill_by_reason_is_validated():
    with pytest.raises(rules.RulesError, match="skill_by_reason: unknown reason 'LEAVING'"):
        rules.parse_rules({"skill_by_reason": {"LEAVING": "retention"}})
    with pytest.raises(rules.RulesError, match="skill_by_reason: must map hand-off reasons to skills"):
        rules.parse_rules({"skill_by_reason": ["CHURN_RISK"]})
    assert rules.parse_rules({"skill_by_reason": {"churn_risk": "Retention"}}).skill_by_reason == {
        "CHURN_RISK": "retention"
    }
