"""Routing rules, as plain functions: requirement, eligibility, scoring, aging, overflow, ETA, choices."""

import pytest
import yaml

from relais.classifier.catalogue import load_catalogue
from relais.common.pb import conversation_pb2 as pb
from relais.routing import rules

SKILLS = {"disputed_payment": "billing", "order_status": "orders", "complaint": "complaints"}
RULES = rules.parse_rules(yaml.safe_load(rules.RULES_PATH.read_text()), known_intents=load_catalogue().intents)


def context(intent="disputed_payment", tier="", reason=pb.HANDOFF_REASON_CUSTOMER_REQUEST, language="fr",
            channel=pb.CHANNEL_CHAT, priority=0):
    return pb.ConversationContext(intent=intent, language=language, reason=reason, customer=pb.Customer(tier=tier),
                                  channel=channel, priority=priority)


def agent(agent_id, languages=("fr",), idle=0.0, state="available", load=None, **levels):
    return rules.Agent(agent_id, frozenset(languages), levels or {"general": 1}, {"chat": 2, "voice": 1},
                       load or {}, idle, state)


def task(task_id, language="fr", priority=0, queued=0.0, channel="chat", stage=0, preferred=(), declined=(), due=None, **required):
    return rules.Task(task_id, language, channel, required or {"general": 1}, priority, queued, tuple(preferred), stage,
                      frozenset(declined), due)


def test_the_shipped_rules_load_and_every_intent_gets_a_skill():
    assert RULES.overflow[0].relax_levels == 1 and RULES.overflow[1].queue == rules.ANY
    assert RULES.offer_timeout_seconds == 20


def test_requirement_takes_skill_from_intent_levels_and_priority_from_rules():
    need = rules.requirement(context(), RULES, SKILLS)
    assert (need.language, need.channel, dict(need.required), need.priority) == ("fr", "chat", {"billing": 2}, 0)
    assert rules.requirement(context(tier="VIP"), RULES, SKILLS).priority == 20
    angry = rules.requirement(context(tier="vip", reason=pb.HANDOFF_REASON_ANGER, priority=12), RULES, SKILLS)
    assert angry.priority == 12 + 20 + 5 and angry.preferred == ("conflict_handling",)
    assert dict(rules.requirement(context(intent="unknown"), RULES, SKILLS).required) == {"general": 1}
    assert rules.requirement(context(channel=pb.CHANNEL_VOICE_TRANSCRIPT), RULES, SKILLS).channel == "voice"
    escalated = context(intent="complaint")
    escalated.reasons[:] = [pb.HANDOFF_REASON_CUSTOMER_REQUEST, pb.HANDOFF_REASON_ANGER]
    assert dict(rules.requirement(escalated, RULES, SKILLS).required) == {"complaints": 1, "conflict_handling": 1}


def test_a_wrong_rules_file_names_every_problem():
    doc = {"rules": [{"when": {"mood": ["x"]}, "priority": 1}, {"when": {"intent": ["no_such_intent"]}, "require": {"billing": 9}},
                     {"when": {"tier": "vip"}}],
           "overflow": [{"after_seconds": 60}, {"after_seconds": 30, "queue": "any"}], "aging_seconds_per_point": -1,
           "colour": "blue"}
    with pytest.raises(rules.RulesError) as error:
        rules.parse_rules(doc, known_intents={"order_status"})
    message = str(error.value)
    for expected in ("colour: unknown key", "rules[0].when: unknown condition 'mood'", "unknown intent 'no_such_intent'",
                     "rules[1].require: must map skills to levels 1..5", "rules[2]: does nothing",
                     "overflow[1]: steps must come in increasing after_seconds", "aging_seconds_per_point: must be a number"):
        assert expected in message, expected


def test_env_overrides_timings_for_tests():
    short = rules.with_env(RULES, {"RELAIS_ROUTING_OFFER_TIMEOUT_SECONDS": "2", "RELAIS_ROUTING_OVERFLOW_SECONDS": "3,6"})
    assert short.offer_timeout_seconds == 2 and [s.after_seconds for s in short.overflow] == [3, 6]
    with pytest.raises(rules.RulesError):
        rules.with_env(RULES, {"RELAIS_ROUTING_OVERFLOW_SECONDS": "3"})


def test_eligibility_needs_the_language_every_skill_at_its_level_and_the_channel():
    need = task("t", billing=2)
    assert rules.eligible(agent("a", billing=2), need, RULES)
    assert rules.eligible(agent("a", billing=3, orders=1), need, RULES)
    assert not rules.eligible(agent("a", billing=1), need, RULES)
    assert not rules.eligible(agent("a", languages=("en",), billing=5), need, RULES)
    assert not rules.eligible(agent("a", orders=5), need, RULES)
    assert not rules.eligible(agent("a", billing=5), task("t", channel="email", billing=1), RULES)  # no email capacity


def test_overflow_relaxes_levels_then_opens_the_broader_queue():
    assert [rules.overflow_stage(s, RULES) for s in (0, 59, 60, 179, 180, 1e6)] == [0, 0, 1, 1, 2, 2]
    assert rules.needs_at_stage({"billing": 2, "cards": 1}, 1, RULES) == ({"billing": 1, "cards": 1}, "")
    assert rules.needs_at_stage({"billing": 2}, 2, RULES)[1] == rules.ANY
    novice, stranger = agent("a", billing=1), agent("b", orders=1)
    assert not rules.eligible(novice, task("t", billing=2), RULES)
    assert rules.eligible(novice, task("t", stage=1, billing=2), RULES)
    assert not rules.eligible(stranger, task("t", stage=1, billing=2), RULES)
    assert rules.eligible(stranger, task("t", stage=2, billing=2), RULES)
    assert not rules.eligible(agent("c", languages=("en",)), task("t", stage=2, billing=2), RULES)  # never the language


def test_best_agent_is_the_best_skill_match_then_the_longest_idle():
    need = task("t", billing=1)
    a, b, c = agent("a", idle=10, billing=1), agent("b", idle=5, billing=1), agent("c", idle=1, billing=3)
    assert rules.best_agent(need, [a, b], RULES).agent_id == "b"
    assert rules.best_agent(need, [a, b, c], RULES).agent_id == "c"
    angry = task("t", preferred=("conflict_handling",), billing=1)
    d = agent("d", idle=50, billing=1, conflict_handling=1)
    assert rules.best_agent(angry, [a, b, c, d], RULES).agent_id == "d"
    assert rules.best_agent(task("t", declined=("b",), billing=1), [a, b], RULES).agent_id == "a"
    full = agent("e", idle=0, load={"chat": 2}, billing=1)
    assert rules.best_agent(need, [full], RULES) is None
    assert rules.best_agent(need, [agent("f", state="break", billing=1)], RULES) is None
    assert rules.best_agent(need, [agent("g", state="busy", load={"chat": 1}, billing=1)], RULES).agent_id == "g"


def test_priority_then_age_orders_the_queue_and_aging_prevents_starvation():
    old_low, new_high = task("old", priority=0, queued=0), task("new", priority=10, queued=100)
    assert [t.task_id for t in rules.queue_order([old_low, new_high], 100, RULES)] == ["new", "old"]
    later = 11 * RULES.aging_seconds_per_point  # the old task has gained 11 points: it beats any newcomer below 11
    assert rules.effective_priority(old_low, later, RULES) == 11
    newcomer = task("newcomer", priority=10, queued=later)
    assert [t.task_id for t in rules.queue_order([newcomer, old_low], later, RULES)] == ["old", "newcomer"]
    same = [task("b", queued=2), task("a", queued=1)]
    assert [t.task_id for t in rules.queue_order(same, 3, RULES)] == ["a", "b"]


def test_assign_respects_queue_order_capacity_and_spreads_work():
    agents = [agent("x", idle=1, billing=1), agent("y", idle=2, billing=1)]
    tasks = [task("t1", priority=1, billing=1), task("t2", priority=5, billing=1), task("t3", billing=1),
             task("t4", billing=1), task("t5", billing=1), task("en", language="en")]
    offers = rules.assign(tasks, agents, 0, RULES)
    assert offers == [("t2", "x"), ("t1", "y"), ("t3", "x"), ("t4", "y")]  # 2 chats each, t5 waits
    busy_x = [agent("x", idle=1, load={"chat": 2}, billing=1), agent("y", idle=2, billing=1)]
    assert rules.assign([task("t", declined=("y",), billing=1)], busy_x, 0, RULES) == []  # waits for x
    assert rules.assign([task("t", declined=("y",), billing=1)], agents[1:], 0, RULES) == [("t", "y")]  # y is the only one
    callback = task("cb", channel="voice", due=100.0, billing=1)
    assert rules.assign([callback], agents, 50, RULES) == []
    assert rules.assign([callback], agents, 100, RULES) == [("cb", "x")]


def test_agent_states_after_a_task_leaves():
    assert rules.state_after_release("busy", 1, closed=True) == "busy"
    assert rules.state_after_release("busy", 0, closed=True) == "wrap_up"
    assert rules.state_after_release("busy", 0, closed=False) == "available"
    assert rules.state_after_release("break", 0, closed=True) == "break"
    assert rules.settable_state("busy", "available") == "available"
    assert rules.settable_state("available", "wrap_up") is None


def test_position_and_expected_wait():
    tasks = [task("a", queued=1), task("b", priority=5, queued=2), task("c", queued=3), task("en", language="en", queued=0),
             task("cb", queued=0, due=1e9)]
    assert [rules.queue_position(t, tasks, 10, RULES) for t in ("b", "a", "c", "en")] == [1, 2, 3, 1]
    assert rules.queue_positions(tasks, 10, RULES) == {"b": 1, "a": 2, "c": 3, "en": 1}
    assert rules.expected_wait_seconds(1, None, 0, RULES) == 240
    assert rules.expected_wait_seconds(3, 100.0, 1, RULES) == 300
    assert rules.expected_wait_seconds(4, 100.0, 2, RULES) == 200


@pytest.mark.parametrize("text,choice", [
    ("STOP", "leave"), ("stop.", "leave"), ("Je pars", "leave"), ("annuler", "leave"), ("CALLBACK", "callback"),
    ("Rappelez-moi !", "callback"), ("rappel", "callback"), ("call me back please", None),
    ("stop charging my card", None), ("where is my order?", None),
])
def test_customer_choices_are_short_exact_answers(text, choice):
    assert rules.customer_choice(text) == choice


def test_best_agent_chooses_what_assign_chooses_for_a_task_alone():
    """The hand-off's fast path (service.py) decides with best_agent; the queue passes with assign: the same choice."""
    import random

    rng = random.Random(7)
    skills = ("general", "billing", "orders", "conflict_handling", "retention")
    for round_ in range(300):
        agents = [rules.Agent(f"a{i}", frozenset(rng.sample(("fr", "en", "de"), rng.randint(1, 2))),
                              {s: rng.randint(1, 3) for s in rng.sample(skills, rng.randint(1, 3))},
                              {"chat": rng.randint(0, 3), "voice": rng.randint(0, 1)},
                              {"chat": rng.randint(0, 3)}, float(rng.randint(0, 20)),
                              rng.choice(("available", "busy", "break", "wrap_up")))
                  for i in range(rng.randint(0, 30))]
        new = task("t", language=rng.choice(("fr", "en")), channel=rng.choice(("chat", "voice")), stage=rng.randint(0, 2),
                   preferred=rng.sample(skills, rng.randint(0, 1)), **{rng.choice(skills): rng.randint(1, 3)})
        chosen = rules.assign([new], agents, 100.0, RULES)
        best = rules.best_agent(new, agents, RULES)
        assert (best.agent_id if best else None) == (chosen[0][1] if chosen else None), round_
