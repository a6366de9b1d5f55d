"""Routing rules, as plain functions: requirement, eligibility, scoring, aging, overflow, ETA, choices."""

import random
from dataclasses import replace
from datetime import datetime, time, timezone

import pytest
import yaml

from relais.classifier.catalogue import load_catalogue
from relais.common.pb import conversation_pb2 as pb
from relais.routing import rules, texts

SKILLS = {"disputed_payment": "billing", "order_status": "orders", "complaint": "complaints"}
RULES = rules.parse_rules(yaml.safe_load(rules.RULES_PATH.read_text()), known_intents=load_catalogue().intents)


def context(
    intent="disputed_payment",
    tier="",
    reason=pb.HANDOFF_REASON_CUSTOMER_REQUEST,
    language="fr",
    channel=pb.CHANNEL_CHAT,
    priority=0,
):
    return pb.ConversationContext(
        intent=intent,
        language=language,
        reason=reason,
        customer=pb.Customer(tier=tier),
        channel=channel,
        priority=priority,
    )


def agent(agent_id, languages=("fr",), idle=0.0, state="available", load=None, **levels):
    return rules.Agent(
        agent_id, frozenset(languages), levels or {"general": 1}, {"chat": 2, "voice": 1}, load or {}, idle, state
    )


def task(
    task_id,
    language="fr",
    priority=0,
    queued=0.0,
    channel="chat",
    stage=0,
    preferred=(),
    declined=(),
    due=None,
    **required,
):
    return rules.Task(
        task_id,
        language,
        channel,
        required or {"general": 1},
        priority,
        queued,
        tuple(preferred),
        stage,
        frozenset(declined),
        due,
    )


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
    doc = {
        "rules": [
            {"when": {"mood": ["x"]}, "priority": 1},
            {"when": {"intent": ["no_such_intent"]}, "require": {"billing": 9}},
            {"when": {"tier": "vip"}},
        ],
        "overflow": [{"after_seconds": 60}, {"after_seconds": 30, "queue": "any"}],
        "aging_seconds_per_point": -1,
        "colour": "blue",
    }
    with pytest.raises(rules.RulesError) as error:
        rules.parse_rules(doc, known_intents={"order_status"})
    message = str(error.value)
    for expected in (
        "colour: unknown key",
        "rules[0].when: unknown condition 'mood'",
        "unknown intent 'no_such_intent'",
        "rules[1].require: must map skills to levels 1..5",
        "rules[2]: does nothing",
        "overflow[1]: steps must come in increasing after_seconds",
        "aging_seconds_per_point: must be a number",
    ):
        assert expected in message, expected


def test_env_overrides_timings_for_tests():
    short = rules.with_env(
        RULES, {"RELAIS_ROUTING_OFFER_TIMEOUT_SECONDS": "2", "RELAIS_ROUTING_OVERFLOW_SECONDS": "3,6"}
    )
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


def best_id(need: rules.Task, agents: list[rules.Agent]) -> str | None:
    """rules.best_agent's choice by id; None: nobody."""
    chosen = rules.best_agent(need, agents, RULES)
    return chosen.agent_id if chosen is not None else None


def test_best_agent_is_the_best_skill_match_then_the_longest_idle():
    need = task("t", billing=1)
    a, b, c = agent("a", idle=10, billing=1), agent("b", idle=5, billing=1), agent("c", idle=1, billing=3)
    assert best_id(need, [a, b]) == "b"
    assert best_id(need, [a, b, c]) == "c"
    angry = task("t", preferred=("conflict_handling",), billing=1)
    d = agent("d", idle=50, billing=1, conflict_handling=1)
    assert best_id(angry, [a, b, c, d]) == "d"
    assert best_id(task("t", declined=("b",), billing=1), [a, b]) == "a"
    full = agent("e", idle=0, load={"chat": 2}, billing=1)
    assert rules.best_agent(need, [full], RULES) is None
    assert rules.best_agent(need, [agent("f", state="break", billing=1)], RULES) is None
    assert best_id(need, [agent("g", state="busy", load={"chat": 1}, billing=1)]) == "g"


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
    tasks = [
        task("t1", priority=1, billing=1),
        task("t2", priority=5, billing=1),
        task("t3", billing=1),
        task("t4", billing=1),
        task("t5", billing=1),
        task("en", language="en"),
    ]
    offers = rules.assign(tasks, agents, 0, RULES)
    assert offers == [("t2", "x"), ("t1", "y"), ("t3", "x"), ("t4", "y")]  # 2 chats each, t5 waits
    busy_x = [agent("x", idle=1, load={"chat": 2}, billing=1), agent("y", idle=2, billing=1)]
    assert rules.assign([task("t", declined=("y",), billing=1)], busy_x, 0, RULES) == []  # waits for x
    assert rules.assign([task("t", declined=("y",), billing=1)], agents[1:], 0, RULES) == [
        ("t", "y")
    ]  # y is the only one
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
    tasks = [
        task("a", queued=1),
        task("b", priority=5, queued=2),
        task("c", queued=3),
        task("en", language="en", queued=0),
        task("cb", queued=0, due=1e9),
    ]
    assert [rules.queue_position(t, tasks, 10, RULES) for t in ("b", "a", "c", "en")] == [1, 2, 3, 1]
    assert rules.queue_positions(tasks, 10, RULES) == {"b": 1, "a": 2, "c": 3, "en": 1}
    assert rules.expected_wait_seconds(1, None, 0, RULES) == 240
    assert rules.expected_wait_seconds(3, 100.0, 1, RULES) == 300
    assert rules.expected_wait_seconds(4, 100.0, 2, RULES) == 200


# What a waiting customer's message chooses, FR and EN: (text, choice when a callback was offered, when it was not).
CHOICES = [
    # leaving, as a command or inside a sentence
    ("STOP", "leave", "leave"),
    ("stop.", "leave", "leave"),
    ("Stop!!", "leave", "leave"),
    ("stop stop", "leave", "leave"),
    ("annuler", "leave", "leave"),
    ("quitter", "leave", "leave"),
    ("leave", "leave", "leave"),
    ("Bon, stop, j'abandonne, c'est trop long.", "leave", "leave"),
    ("J’abandonne", "leave", "leave"),
    ("Laissez tomber, je reviendrai plus tard", "leave", "leave"),
    ("tant pis", "leave", "leave"),
    ("Je pars", "leave", "leave"),
    ("je m'en vais, merci", "leave", "leave"),
    ("je ne veux plus attendre", "leave", "leave"),
    ("ok stop svp", "leave", "leave"),
    ("Forget it, I'll try again tomorrow", "leave", "leave"),
    ("I give up.", "leave", "leave"),
    ("never mind", "leave", "leave"),
    ("This is taking forever, I'm leaving", "leave", "leave"),
    ("I'll call back later", "leave", "leave"),
    ("je vous rappellerai", "leave", "leave"),
    ("Merci, au revoir", "leave", "leave"),
    ("ok bye", "leave", "leave"),
    # a callback, as a command or inside a sentence — only when one was offered; otherwise a message
    ("CALLBACK", "callback", None),
    ("rappel", "callback", None),
    ("Rappelez-moi !", "callback", None),
    ("pouvez-vous me rappeler plutôt ?", "callback", None),
    ("Vous pouvez me rappeler demain matin ?", "callback", None),
    ("Je préfère être rappelée", "callback", None),
    ("je voudrais plutôt un rappel téléphonique", "callback", None),
    ("J'aimerais qu'on me rappelle", "callback", None),
    ("call me back please", "callback", None),
    ("Could you call me instead?", "callback", None),
    ("I'd rather get a call back", "callback", None),
    ("Bon, stop, rappelez-moi plutôt", "callback", "leave"),
    # neither: a message for the advisor
    ("stop charging my card twice", None, None),
    ("Arrêtez de me débiter deux fois", None, None),
    ("annulez ma commande CMD-123456", None, None),
    ("I want to cancel my subscription", None, None),
    ("je pars en vacances demain, pouvez-vous changer l'adresse ?", None, None),
    ("I'm leaving for Spain on Monday, where is my parcel?", None, None),
    ("Pouvez-vous me rappeler le montant de ma facture ?", None, None),
    ("je n'arrive pas à me rappeler mon code", None, None),
    ("ne me rappelez pas, j'attends", None, None),
    ("don't call me back, I'll wait", None, None),
    ("j'ai reçu un rappel de paiement", None, None),
    ("je n'abandonne pas", None, None),
    ("merci", None, None),
    ("where is my order?", None, None),
]


@pytest.mark.parametrize("text,offered,not_offered", CHOICES)
def test_leave_and_callback_are_understood_inside_a_sentence_and_callback_only_when_offered(text, offered, not_offered):
    assert rules.customer_choice(text, callback_offered=True) == offered
    assert rules.customer_choice(text, callback_offered=False) == not_offered


PLEASANTRIES = [
    ("Thanks a lot, bye!", True),
    ("merci, au revoir", True),
    ("Merci beaucoup et bonne journée", True),
    ("super merci 👍", True),
    ("ok parfait, merci à vous", True),
    ("thank you so much, have a nice day", True),
    ("👍", True),
    ("C'est parfait, merci pour votre aide !", True),
    ("Merci pour rien.", False),
    ("Thanks, but my parcel still hasn't arrived", False),
    ("merci, et pour ma carte bloquée ?", False),
    ("Bonjour, j'ai un autre problème", False),
    ("I want to talk to a person", False),
    ("Where is my order CMD-123456?", False),
]


@pytest.mark.parametrize("text,closing", PLEASANTRIES)
def test_a_closing_pleasantry_is_told_from_a_new_request(text, closing):
    assert rules.closing_pleasantry(text) is closing
    assert rules.closing_pleasantry(text, pb.Classification(out_of_scope=True)) is closing


def test_the_classification_vetoes_a_pleasantry_that_carries_a_request_or_anger():
    assert not rules.closing_pleasantry("merci", pb.Classification(asks_for_human=True))
    assert not rules.closing_pleasantry("merci, au revoir", pb.Classification(sentiment=pb.Sentiment(anger=True)))
    assert not rules.closing_pleasantry("ok merci", pb.Classification(intent="order_status", confidence=0.93))
    assert rules.closing_pleasantry("ok merci", pb.Classification(intent="order_status", confidence=0.31))


PERSON = rules.parse_rules(yaml.safe_load(rules.RULES_PATH.read_text()), known_intents=load_catalogue().intents)


def person_request(intent="speak_to_advisor", earlier=(), reasons=(pb.HANDOFF_REASON_CUSTOMER_REQUEST,), guess=""):
    ctx = pb.ConversationContext(intent=intent, language="en", reason=reasons[0], reasons=list(reasons))
    for i, earlier_intent in enumerate(earlier):
        ctx.turns.add(turn_id=f"t{i}", classification=pb.Classification(intent=earlier_intent, confidence=0.9))
    ctx.turns.add(
        turn_id="last",
        text="Thanks, but I would like to talk to a real person",
        classification=pb.Classification(intent="" if guess else intent, best_guess=guess, asks_for_human=True),
    )
    return ctx


def test_a_request_for_a_person_with_no_other_intent_requires_no_skill():
    skills = {i.id: i.skill for i in load_catalogue().intents.values()}
    example_agent = agent("alice", languages=("fr", "en"), billing=3, orders=2, conflict_handling=1)
    for ctx in (
        person_request(),
        person_request(intent=""),
        person_request(intent="opening_hours", guess="opening_hours"),
        person_request(reasons=(pb.HANDOFF_REASON_CUSTOMER_REQUEST, pb.HANDOFF_REASON_NOT_BOT_ALLOWED)),
    ):
        need = rules.requirement(ctx, PERSON, skills)
        assert dict(need.required) == {}, ctx
        new = rules.Task("t", need.language, need.channel, need.required, need.priority, 0.0, need.preferred)
        assert rules.best_agent(new, [example_agent], PERSON) is example_agent
    # After two bot answers on opening hours, an advisor who has that skill is offered it first; anyone may take it.
    after_answers = rules.requirement(person_request(earlier=("opening_hours", "opening_hours")), PERSON, skills)
    assert dict(after_answers.required) == {} and after_answers.preferred == ("general",)
    # A real intent stated with the request keeps its skill; so does a hand-off that is not a request for a person.
    assert dict(rules.requirement(person_request(intent="disputed_payment"), PERSON, skills).required) == {"billing": 2}
    assert dict(
        rules.requirement(person_request(intent="", reasons=(pb.HANDOFF_REASON_OUT_OF_SCOPE,)), PERSON, skills).required
    ) == {"general": 1}
    # A language the bot does not serve, and no intent understood: anyone who speaks it.
    spanish = pb.ConversationContext(
        language="es", reason=pb.HANDOFF_REASON_LANGUAGE_NOT_SERVED, reasons=[pb.HANDOFF_REASON_LANGUAGE_NOT_SERVED]
    )
    assert dict(rules.requirement(spanish, PERSON, skills).required) == {}
    spanish.intent = "disputed_payment"  # understood with confidence: its skill still applies
    assert dict(rules.requirement(spanish, PERSON, skills).required) == {"billing": 2}
    with pytest.raises(rules.RulesError, match="person_request_intents: unknown intent 'talk_to_human'"):
        rules.parse_rules({"person_request_intents": ["talk_to_human"]}, known_intents={"order_status"})


def test_a_task_nobody_signed_in_can_take_is_widened_at_once():
    dispute = task("t", billing=2)
    novice, stranger = agent("novice", billing=1), agent("stranger", orders=1)
    assert rules.widened_stage(dispute, [agent("expert", billing=2)], RULES) == 0
    assert (
        rules.widened_stage(dispute, [agent("expert", state="break", billing=3), stranger], RULES) == 0
    )  # on a break: comes back
    assert rules.widened_stage(dispute, [novice, stranger], RULES) == 1  # levels relaxed by one: the novice
    assert rules.widened_stage(dispute, [stranger], RULES) == 2  # anyone speaking French
    assert rules.widened_stage(dispute, [agent("gone", state="offline", billing=5)], RULES) is None
    assert rules.widened_stage(dispute, [agent("english", languages=("en",), billing=5)], RULES) is None
    assert rules.widened_stage(task("t", stage=2, billing=2), [stranger], RULES) == 2  # never narrowed back
    assert (
        rules.widened_stage(
            task("t", channel="voice", billing=1),
            [rules.Agent("chat-only", frozenset({"fr"}), {"billing": 1}, {"chat": 3}, {}, 0)],
            RULES,
        )
        is None
    )


def test_the_expected_wait_is_shared_by_the_advisors_who_serve_that_queue_only():
    dispute = task("t", billing=2)
    signed_in = [
        agent("e1", billing=2),
        agent("e2", state="busy", billing=3),
        agent("novice", billing=1),
        agent("english", languages=("en",), billing=5),
        agent("gone", state="offline", billing=5),
    ]
    assert rules.serving(dispute, signed_in, RULES) == 2
    assert rules.serving(dispute, [agent("stranger", orders=1)], RULES) == 1  # widened to the broader queue: that one
    assert rules.serving(dispute, [], RULES) == 0


PARIS = rules.parse_rules(
    {
        "center": {
            "time_zone": "Europe/Paris",
            "opening_hours": {
                "mon": "09:00-18:00",
                "tue": "09:00-18:00",
                "wed": "09:00-18:00",
                "thu": "09:00-18:00",
                "fri": "09:00-12:00, 14:00-18:00",
                "sat": "closed",
            },
        }
    }
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=timezone.utc)


def test_the_center_opening_hours_and_the_next_opening():
    # Monday 7 December 2026, winter: Paris is UTC+1.
    assert rules.is_open(utc(2026, 12, 7, 8, 0), PARIS.center)  # 09:00 in Paris
    assert not rules.is_open(utc(2026, 12, 7, 7, 59), PARIS.center)
    assert not rules.is_open(utc(2026, 12, 11, 12, 30), PARIS.center)  # Friday lunch
    assert rules.next_opening(utc(2026, 12, 11, 12, 30), PARIS.center) == utc(2026, 12, 11, 13, 0)
    assert rules.next_opening(utc(2026, 12, 11, 17, 0), PARIS.center) == utc(
        2026, 12, 14, 8, 0
    )  # Friday 18:00 -> Monday
    assert rules.next_opening(utc(2026, 12, 7, 10, 0), PARIS.center) == utc(2026, 12, 7, 10, 0)  # open: now
    assert not rules.is_open(utc(2026, 12, 13, 10, 0), RULES.center)  # the shipped center is closed on Sundays
    assert rules.is_open(utc(2026, 12, 12, 10, 0), RULES.center)
    always = rules.parse_rules({})
    assert rules.is_open(utc(2026, 12, 13, 3, 0), always.center)
    # Tests run the stack with a center that never closes.
    assert rules.with_env(RULES, {"RELAIS_ROUTING_CENTER": "{time_zone: Europe/Paris}"}).center.opening_hours == {}
    with pytest.raises(rules.RulesError, match="RELAIS_ROUTING_CENTER: center.time_zone: unknown time zone"):
        rules.with_env(RULES, {"RELAIS_ROUTING_CENTER": "{time_zone: Paris}"})
    # A callback is due after the wait, moved to the next opening when the center is closed then.
    assert rules.callback_due(utc(2026, 12, 7, 10, 0), 600, PARIS.center) == utc(2026, 12, 7, 10, 10)
    assert rules.callback_due(utc(2026, 12, 7, 16, 55), 600, PARIS.center) == utc(2026, 12, 8, 8, 0)
    assert rules.callback_due(utc(2026, 12, 7, 10, 0), None, PARIS.center) == utc(2026, 12, 7, 10, 0)


def test_a_wrong_center_is_named():
    with pytest.raises(rules.RulesError) as error:
        rules.parse_rules(
            {
                "center": {
                    "time_zone": "Mars/Olympus",
                    "opening_hours": {"mon": "18:00-09:00", "sun": "all day", "moon": "closed"},
                }
            }
        )
    for expected in (
        "center.time_zone: unknown time zone 'Mars/Olympus'",
        "center.opening_hours.mon: expected",
        "center.opening_hours.sun: expected",
        "center.opening_hours.moon: unknown day",
    ):
        assert expected in str(error.value), expected


def test_times_are_told_in_the_customer_zone_from_the_event_else_the_center():
    now = utc(2026, 12, 7, 14, 0)
    due = utc(2026, 12, 7, 14, 42)
    paris = rules.customer_zone("", PARIS.center)
    assert texts.spoken_time(due, paris, "fr", now) == "à 15:42 (Europe/Paris)"
    assert (
        texts.spoken_time(due, rules.customer_zone("America/Montreal", PARIS.center), "en", now)
        == "at 09:42 (America/Montreal)"
    )
    assert texts.spoken_time(due, rules.customer_zone("+05:30", PARIS.center), "en", now) == "at 20:12 (UTC+05:30)"
    assert texts.spoken_time(utc(2026, 12, 8, 8, 0), paris, "fr", now) == "demain à 09:00 (Europe/Paris)"
    assert (
        texts.spoken_time(utc(2026, 12, 14, 8, 0), paris, "en", now) == "on Monday 14 December at 09:00 (Europe/Paris)"
    )
    assert rules.customer_zone("Not/AZone", PARIS.center) == paris


def test_with_nobody_serving_the_queue_no_wait_is_promised_and_a_callback_is_offered():
    open_now, closed_now = utc(2026, 12, 7, 10, 0), utc(2026, 12, 12, 10, 0)  # a Monday, a Saturday
    nobody = rules.waiting(3, None, 0, open_now, PARIS)
    assert (nobody.wait_seconds, nobody.callback_offered, nobody.closed, nobody.opens_at) == (None, True, False, None)
    closed = rules.waiting(1, None, 0, closed_now, PARIS)
    assert closed.closed and closed.opens_at == utc(2026, 12, 14, 8, 0) and closed.callback_offered
    served = rules.waiting(2, 100.0, 2, open_now, PARIS)
    assert (served.wait_seconds, served.callback_offered) == (100, False)
    assert rules.waiting(10, 100.0, 1, open_now, PARIS).callback_offered  # 1000 s > callback_above_seconds
    assert rules.text_languages("es", ("fr", "en")) == ("en", "fr") and rules.text_languages("fr", ("fr", "en")) == (
        "fr",
    )


AGENT_SKILLS = ("general", "billing", "orders", "conflict_handling", "retention")


def random_agents(rng, most: int, idle_seconds: int) -> list:
    """Up to `most` agents with random languages, skill levels, capacity, load, idle time and state."""
    return [
        rules.Agent(
            f"a{i}",
            frozenset(rng.sample(("fr", "en", "de"), rng.randint(1, 2))),
            {s: rng.randint(1, 3) for s in rng.sample(AGENT_SKILLS, rng.randint(1, 3))},
            {"chat": rng.randint(0, 3), "voice": rng.randint(0, 1)},
            {"chat": rng.randint(0, 3)},
            float(rng.randint(0, idle_seconds)),
            rng.choice(("available", "busy", "break", "wrap_up")),
        )
        for i in range(rng.randint(0, most))
    ]


def test_best_agent_chooses_what_assign_chooses_for_a_task_alone():
    """The hand-off's fast path (service.py) decides with best_agent; the queue passes with assign: the same choice."""
    rng = random.Random(7)
    for round_ in range(300):
        agents = random_agents(rng, most=30, idle_seconds=20)
        new = task(
            "t",
            language=rng.choice(("fr", "en")),
            channel=rng.choice(("chat", "voice")),
            stage=rng.randint(0, 2),
            preferred=rng.sample(AGENT_SKILLS, rng.randint(0, 1)),
            **{rng.choice(AGENT_SKILLS): rng.randint(1, 3)},
        )
        chosen = rules.assign([new], agents, 100.0, RULES)
        best = rules.best_agent(new, agents, RULES)
        assert (best.agent_id if best else None) == (chosen[0][1] if chosen else None), round_


def test_the_ranked_choice_is_best_agents_choice():
    """The hand-off's fast path ranks the agents once per kind of need (rules.ranking) and then reads only the best
    groups (rules.best_ranked): the same agent as best_agent over the connected ones, whatever their state and load."""
    rng = random.Random(11)
    for round_ in range(400):
        agents = random_agents(rng, most=40, idle_seconds=5)
        connected = {a.agent_id for a in agents if rng.random() < 0.8}
        new = task(
            "t",
            language=rng.choice(("fr", "en")),
            channel=rng.choice(("chat", "voice")),
            stage=rng.randint(0, 2),
            preferred=rng.sample(AGENT_SKILLS, rng.randint(0, 2)),
            declined=[a.agent_id for a in agents if rng.random() < 0.1],
            **{s: rng.randint(1, 3) for s in rng.sample(AGENT_SKILLS, rng.randint(1, 2))},
        )
        # ranked from profiles alone (everyone at rest), then asked with the agents as they are now
        groups = rules.ranking(new, [replace(a, state="available", load={}) for a in agents], RULES)
        expected = rules.best_agent(new, [a for a in agents if a.agent_id in connected], RULES)
        ranked = rules.best_ranked(new, groups, {a.agent_id: a for a in agents}, connected)
        assert (ranked.agent_id if ranked else None) == (expected.agent_id if expected else None), round_
    assert rules.needs_signature(task("t", billing=2, general=1)) == rules.needs_signature(
        task("u", general=1, billing=2)
    )


# --- what routing's handlers ask the rules (handlers.py) ---


def test_an_agent_asking_for_available_while_holding_tasks_is_busy():
    assert rules.settable_state("break", "available", holding=0) == "available"
    assert rules.settable_state("break", "available", holding=2) == "busy"
    assert rules.settable_state("busy", "break", holding=1) == "break"  # a break waits for nothing: offers stop now
    assert rules.settable_state("available", "busy") is None and rules.settable_state("busy", "offline") is None
    assert rules.SETTABLE_STATES == ("available", "break")


def test_an_offer_adds_to_the_agents_load_on_its_channel_and_makes_it_busy():
    before = agent("x", idle=5.0, load={"chat": 1, "voice": 1})
    after = rules.offered(before, "chat", 42.0)
    assert after.load == {"chat": 2, "voice": 1} and after.idle_since == 42.0 and after.state == "busy"
    assert rules.offered(agent("y"), "voice", 1.0).load == {"voice": 1}
    assert before.load == {"chat": 1, "voice": 1}  # the agent as it was is left alone


def test_a_conversation_whose_advisor_left_waits_again_for_anyone_but_them():
    left = rules.requeue_after_leaving("x", signed_out=True)
    assert (left.stage, left.declined_by, left.required) == (0, ("x",), None)  # its own needs, from the first stage
    assert left.note == "the previous advisor signed out" and left.detail == "agent signed out"
    gone = rules.requeue_after_leaving("x", signed_out=False)
    assert gone.note == "the previous advisor was disconnected" and gone.detail == "agent was disconnected"


def test_a_transferred_conversation_needs_the_queues_skill_and_not_the_agent_who_transferred_it():
    moved = rules.transferred("billing", "x")
    assert (moved.required, moved.preferred, moved.stage, moved.declined_by) == ({"billing": 1}, (), 0, ("x",))


def test_the_ticker_makes_a_full_pass_about_every_thirty_seconds():
    assert [t for t in range(1, 100) if rules.full_pass(t, 1.0)] == [30, 60, 90]
    assert [t for t in range(1, 400) if rules.full_pass(t, 0.2)] == [150, 300]
    assert all(rules.full_pass(t, 60.0) for t in range(1, 5))  # a tick longer than 30 s: every one


def test_waiting_tasks_are_offered_again_after_a_tick_only_when_something_may_let_one_be():
    assert not rules.redispatch(rules.TickFindings())  # aging alone changes no one's eligibility
    for finding in (
        "full_pass",
        "signed_out",
        "offers_expired",
        "wrap_ups_over",
        "overflowed",
        "widened",
        "callback_due",
    ):
        assert rules.redispatch(rules.TickFindings(**{finding: True})), finding


def test_widening_looks_at_every_waiting_task_when_who_is_signed_in_changed():
    assert rules.widen_every(full=True, signed_in="a", signed_in_seen="a")
    assert rules.widen_every(full=False, signed_in="b", signed_in_seen="a")
    assert rules.widen_every(full=False, signed_in="a", signed_in_seen=None)  # after a restart or a take-over
    assert not rules.widen_every(full=False, signed_in="a", signed_in_seen="a")


def test_a_tick_is_idle_only_when_nothing_it_acts_on_is_due():
    quiet = {
        "signed_in": "a",
        "expired": False,
        "wrap_up_over": False,
        "overflow": False,
        "widen": False,
        "callback": False,
    }
    assert rules.tick_idle(quiet, "a", reconnect_over=False)
    assert not rules.tick_idle(quiet, "a", reconnect_over=True)
    assert not rules.tick_idle(quiet, "b", reconnect_over=False)  # someone signed in or out
    for due in ("expired", "wrap_up_over", "overflow", "widen", "callback"):
        assert not rules.tick_idle(quiet | {due: True}, "a", reconnect_over=False), due


def test_opening_hours_may_end_at_midnight_and_come_in_order():
    center = rules.parse_rules(
        {"center": {"opening_hours": {"mon": "20:00-24:00", "tue": "08:00-12:00, 13:00-17:30", "wed": "closed"}}}
    ).center
    assert center.opening_hours[0] == ((time(20, 0), time.max),)
    assert center.opening_hours[1] == ((time(8, 0), time(12, 0)), (time(13, 0), time(17, 30)))
    assert center.opening_hours[2] == ()
    for wrong in ("20:00-24:30", "09:00-12:00, 11:00-13:00", "12:00-12:00", "9h-12h"):
        with pytest.raises(rules.RulesError, match="center.opening_hours.mon: expected"):
            rules.parse_rules({"center": {"opening_hours": {"mon": wrong}}})
