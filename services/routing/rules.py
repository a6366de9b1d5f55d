"""Routing rules, pure: what a hand-off requires, who may take it, who is best, in which order, how long.

Everything here is a plain function of plain values (no database, no broker), tested in
tests/unit/routing/test_routing_rules.py. The declared part lives in routing_rules.yaml, loaded by `load_rules`.
"""

import math
import os
import re
from collections.abc import Collection, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, TypeGuard
from zoneinfo import ZoneInfo

import yaml

from relais.common import customer_contact
from relais.common.config import ConfigError
from relais.common.language import fold
from relais.common.lookup_words import DAYS as WEEKDAYS
from relais.common.pb import conversation_pb2 as pb
from relais.common.queue_words import CALLBACK_COMMANDS, FAREWELLS, FILLER, LEAVE_COMMANDS

RULES_PATH = Path(__file__).with_name("routing_rules.yaml")
MAX_LEVEL = 5
CHANNELS = ("chat", "email", "sms", "voice")
ANY = "any"
OFFERABLE = ("available", "busy")  # states in which an agent receives offers, up to its capacity
STATES = ("offline", "available", "busy", "wrap_up", "break")
SENTIMENTS = ("anger", "distress", "escalating", "urgency")
CONDITIONS = ("intent", "tier", "sentiment", "reason", "channel", "language")
REASONS = {pb.HandoffReason.Name(v)[len("HANDOFF_REASON_") :]: v for v in pb.HandoffReason.values() if v}
SCALARS = {  # key -> (env override, minimum)
    "aging_seconds_per_point": ("RELAIS_ROUTING_AGING_SECONDS_PER_POINT", 0.001),
    "offer_timeout_seconds": ("RELAIS_ROUTING_OFFER_TIMEOUT_SECONDS", 0.1),
    "wrap_up_seconds": ("RELAIS_ROUTING_WRAP_UP_SECONDS", 0),
    "queue_update_seconds": ("RELAIS_ROUTING_QUEUE_UPDATE_SECONDS", 0.1),
    "callback_above_seconds": ("RELAIS_ROUTING_CALLBACK_ABOVE_SECONDS", 0),
    "default_handle_seconds": ("RELAIS_ROUTING_DEFAULT_HANDLE_SECONDS", 1),
    "reconnect_seconds": ("RELAIS_ROUTING_RECONNECT_SECONDS", 1),
}


class RulesError(ConfigError):
    """The rules file is wrong; the message lists every problem (a service stops on it with that message alone)."""


@dataclass(frozen=True)
class Rule:
    name: str
    when: Mapping[str, frozenset[str]]
    require: Mapping[str, int] = field(default_factory=dict)
    prefer: tuple[str, ...] = ()
    priority: int = 0


@dataclass(frozen=True)
class OverflowStep:
    after_seconds: float
    relax_levels: int = 0
    queue: str = ""  # "any", or a skill whose agents may also take the task


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Center:
    """The contact center's time zone and weekly opening hours (weekday 0 = Monday -> (opens, closes) ranges).
    No opening hours declared: always open."""

    time_zone: str = "UTC"
    opening_hours: Mapping[int, tuple[tuple[time, time], ...]] = field(default_factory=dict)

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class RoutingRules:
    rules: tuple[Rule, ...] = ()
    aging_seconds_per_point: float = 30
    offer_timeout_seconds: float = 20
    overflow: tuple[OverflowStep, ...] = ()
    wrap_up_seconds: float = 30
    default_capacity: Mapping[str, int] = field(default_factory=lambda: {"chat": 3, "email": 5, "sms": 3, "voice": 1})
    queue_update_seconds: float = 60
    callback_above_seconds: float = 180
    default_handle_seconds: float = 240
    reconnect_seconds: float = 120
    center: Center = field(default_factory=Center)
    # Intents that only mean "a person, please": such a hand-off requires no skill (any advisor of the language).
    person_request_intents: frozenset[str] = frozenset()
    # Hand-off reason (CHURN_RISK) -> the skill it requires instead of its intent's (a customer who may leave
    # needs retention whatever they asked).
    skill_by_reason: Mapping[str, str] = field(default_factory=dict)


# --- loading and validation ---


def load_rules(
    path: Path | None = None, known_intents: Iterable[str] | None = None, env: Mapping[str, str] | None = None
) -> RoutingRules:
    """Reads and validates the rules file ($RELAIS_ROUTING_RULES or the shipped one); env overrides timings."""
    env = os.environ if env is None else env
    path = Path(path or env.get("RELAIS_ROUTING_RULES") or RULES_PATH)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise RulesError(f"{path}: {error}") from None
    return parse_rules(doc, path.name, known_intents, env)


def parse_rules(
    doc,
    where: str = "routing_rules.yaml",
    known_intents: Iterable[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> RoutingRules:
    problems: list[str] = []
    bad = lambda at, msg: problems.append(f"{where}: {at}: {msg}")
    if not isinstance(doc, dict):
        raise RulesError(f"{where}: expected a mapping with `rules`")
    known_keys = {
        "version",
        "rules",
        "overflow",
        "default_capacity",
        "center",
        "person_request_intents",
        "skill_by_reason",
        *SCALARS,
    }
    for key in doc:
        if key not in known_keys:
            bad(key, f"unknown key (known: {', '.join(sorted(known_keys))})")
    intents = set(known_intents) if known_intents is not None else None
    rules = []
    raw_rules = doc.get("rules") or []
    if not isinstance(raw_rules, list):
        bad("rules", "must be a list")
        raw_rules = []
    for i, raw in enumerate(raw_rules):
        rule = _parse_rule(raw, f"rules[{i}]", intents, bad)
        if rule is not None:
            rules.append(rule)
    overflow: list[OverflowStep] = []
    raw_overflow = doc.get("overflow") or []
    if not isinstance(raw_overflow, list):
        bad("overflow", "must be a list of steps")
        raw_overflow = []
    for i, raw in enumerate(raw_overflow):
        at = f"overflow[{i}]"
        if not isinstance(raw, dict) or not set(raw) <= {"after_seconds", "relax_levels", "queue"}:
            bad(at, "a step is {after_seconds: N, relax_levels: N} and/or {queue: any | <skill>}")
            continue
        after, relax, queue = raw.get("after_seconds"), raw.get("relax_levels", 0), raw.get("queue", "")
        if not _number(after) or after < 0:
            bad(at, f"after_seconds must be a number ≥ 0, got {after!r}")
            continue
        if not isinstance(relax, int) or not 0 <= relax < MAX_LEVEL:
            bad(at, f"relax_levels must be a whole number from 0 to {MAX_LEVEL - 1}, got {relax!r}")
            continue
        if not isinstance(queue, str):
            bad(at, f"queue must be `any` or a skill name, got {queue!r}")
            continue
        if overflow and after <= overflow[-1].after_seconds:
            bad(at, "steps must come in increasing after_seconds")
        overflow.append(OverflowStep(float(after), relax, queue.lower()))
    capacity = doc.get("default_capacity", RoutingRules().default_capacity)
    if not isinstance(capacity, dict) or not all(
        k in CHANNELS and isinstance(v, int) and v >= 0 for k, v in capacity.items()
    ):
        bad("default_capacity", f"must map channels ({', '.join(CHANNELS)}) to whole numbers ≥ 0, got {capacity!r}")
        capacity = RoutingRules().default_capacity
    scalars = {}
    for key, (_, minimum) in SCALARS.items():
        if key in doc:
            if not _number(doc[key]) or doc[key] < minimum:
                bad(key, f"must be a number ≥ {minimum}, got {doc[key]!r}")
            else:
                scalars[key] = float(doc[key])
    center = _parse_center(doc.get("center"), bad) if "center" in doc else Center()
    person = doc.get("person_request_intents", [])
    if not isinstance(person, list) or not all(isinstance(i, str) for i in person):
        bad("person_request_intents", f"must be a list of intents, got {person!r}")
        person = []
    for intent in person:
        if intents is not None and intent not in intents:
            bad("person_request_intents", f"unknown intent {intent!r}")
    by_reason = doc.get("skill_by_reason", {})
    if not isinstance(by_reason, dict) or not all(isinstance(s, str) and s for s in by_reason.values()):
        bad(
            "skill_by_reason", f"must map hand-off reasons to skills, e.g. {{CHURN_RISK: retention}}, got {by_reason!r}"
        )
        by_reason = {}
    for reason in by_reason:
        if str(reason).upper() not in REASONS:
            bad("skill_by_reason", f"unknown reason {reason!r} (known: {', '.join(sorted(REASONS))})")
    if problems:
        raise RulesError("invalid routing rules:\n  " + "\n  ".join(problems))
    result = RoutingRules(
        rules=tuple(rules),
        overflow=tuple(overflow),
        default_capacity=dict(capacity),
        center=center,
        person_request_intents=frozenset(person),
        skill_by_reason={str(r).upper(): str(s).lower() for r, s in by_reason.items()},
        **scalars,
    )
    return with_env(result, env or {})


HOURS = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])\s*-\s*([01]?[0-9]|2[0-4]):([0-5][0-9])$")


def _parse_center(raw, bad) -> Center:
    """center: {time_zone: Europe/Paris, opening_hours: {mon: "09:00-18:00", sat: "09:00-12:00, 14:00-17:00", sun: closed}}"""
    if not isinstance(raw, dict) or not set(raw) <= {"time_zone", "opening_hours"}:
        bad("center", 'must be {time_zone: <IANA zone>, opening_hours: {mon: "09:00-18:00", ..., sun: closed}}')
        return Center()
    zone = raw.get("time_zone", "UTC")
    if not isinstance(zone, str) or not isinstance(zone_of(zone), ZoneInfo):
        bad("center.time_zone", f"unknown time zone {raw.get('time_zone')!r} (an IANA name, e.g. Europe/Paris)")
        zone = "UTC"
    hours_raw = raw.get("opening_hours") or {}
    if not isinstance(hours_raw, dict):
        bad("center.opening_hours", 'must map days (mon..sun) to "HH:MM-HH:MM" ranges or `closed`')
        return Center(zone)
    hours: dict[int, tuple[tuple[time, time], ...]] = {day: () for day in range(7)}
    for day, value in hours_raw.items():
        at = f"center.opening_hours.{day}"
        if day not in DAYS:
            bad(at, f"unknown day (known: {', '.join(DAYS)})")
            continue
        if value in ("closed", None, ""):
            continue
        ranges: list[tuple[time, time]] = []
        for part in value.split(",") if isinstance(value, str) else [None]:
            opening = _opening_range(part)
            if opening is None or (ranges and opening[0] < ranges[-1][1]):
                bad(at, f'expected "HH:MM-HH:MM" ranges in order (or `closed`), got {value!r}')
                break
            ranges.append(opening)
        hours[DAYS.index(day)] = tuple(ranges)
    return Center(zone, hours if hours_raw else {})


def _opening_range(part: str | None) -> tuple[time, time] | None:
    """(opens, closes) of "HH:MM-HH:MM" (24:00: midnight at the end of the day); None when it is not one."""
    match = HOURS.match(part.strip()) if part is not None else None
    if match is None or (match[3] == "24" and match[4] != "00"):
        return None
    opens = time(int(match[1]), int(match[2]))
    closes = time.max if match[3] == "24" else time(int(match[3]), int(match[4]))
    return (opens, closes) if opens < closes else None


def with_env(rules: RoutingRules, env: Mapping[str, str]) -> RoutingRules:
    """Timings from RELAIS_ROUTING_* variables (tests use short ones); RELAIS_ROUTING_OVERFLOW_SECONDS=60,180;
    RELAIS_ROUTING_CENTER='{time_zone: Europe/Paris}' (no opening hours: never closed)."""
    changes: dict[str, Any] = {}
    for key, (name, minimum) in SCALARS.items():
        if env.get(name):
            value = float(env[name])
            if value < minimum:
                raise RulesError(f"{name} must be ≥ {minimum}, got {value}")
            changes[key] = value
    if env.get("RELAIS_ROUTING_OVERFLOW_SECONDS"):
        afters = [float(x) for x in env["RELAIS_ROUTING_OVERFLOW_SECONDS"].split(",")]
        if len(afters) != len(rules.overflow):
            raise RulesError(
                f"RELAIS_ROUTING_OVERFLOW_SECONDS needs {len(rules.overflow)} values, one per overflow step"
            )
        changes["overflow"] = tuple(replace(s, after_seconds=a) for s, a in zip(rules.overflow, afters))
    if env.get("RELAIS_ROUTING_CENTER"):
        problems = []
        try:
            raw = yaml.safe_load(env["RELAIS_ROUTING_CENTER"])
        except yaml.YAMLError as error:
            raise RulesError(f"RELAIS_ROUTING_CENTER: {error}") from None
        changes["center"] = _parse_center(raw, lambda at, msg: problems.append(f"{at}: {msg}"))
        if problems:
            raise RulesError("RELAIS_ROUTING_CENTER: " + "; ".join(problems))
    return replace(rules, **changes)


def _parse_rule(raw, at: str, intents: set[str] | None, bad) -> Rule | None:
    if not isinstance(raw, dict):
        bad(at, "a rule is a mapping with `when` and at least one of require, prefer, priority")
        return None
    unknown = set(raw) - {"name", "when", "require", "prefer", "priority"}
    if unknown:
        bad(at, f"unknown key(s) {sorted(unknown)} (known: name, when, require, prefer, priority)")
    when_raw = raw.get("when")
    if not isinstance(when_raw, dict) or not when_raw:
        bad(f"{at}.when", "must be a mapping of conditions: " + ", ".join(CONDITIONS))
        return None
    when = {}
    for key, values in when_raw.items():
        if key not in CONDITIONS:
            bad(f"{at}.when", f"unknown condition {key!r} (known: {', '.join(CONDITIONS)})")
            continue
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            bad(f"{at}.when.{key}", "must be a name or a list of names")
            continue
        values = [v.lower() if key != "reason" else v.upper() for v in values]
        allowed = {
            "sentiment": set(SENTIMENTS),
            "reason": set(REASONS),
            "channel": set(CHANNELS) | {"voice_transcript"},
            "intent": intents,
        }.get(key)
        for v in values:
            if allowed is not None and v not in allowed:
                bad(
                    f"{at}.when.{key}",
                    f"unknown {key} {v!r}" + (f" (known: {', '.join(sorted(allowed))})" if len(allowed) < 20 else ""),
                )
        when[key] = frozenset(values)
    require = raw.get("require", {})
    if not isinstance(require, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and 1 <= v <= MAX_LEVEL for k, v in require.items()
    ):
        bad(f"{at}.require", f"must map skills to levels 1..{MAX_LEVEL}, got {require!r}")
        require = {}
    prefer = raw.get("prefer", [])
    if not isinstance(prefer, list) or not all(isinstance(s, str) for s in prefer):
        bad(f"{at}.prefer", f"must be a list of skills, got {prefer!r}")
        prefer = []
    priority = raw.get("priority", 0)
    if not isinstance(priority, int):
        bad(f"{at}.priority", f"must be a whole number, got {priority!r}")
        priority = 0
    if not (require or prefer or priority):
        bad(at, "does nothing: give require, prefer or priority")
    return Rule(
        str(raw.get("name", at)),
        when,
        {k.lower(): v for k, v in require.items()},
        tuple(s.lower() for s in prefer),
        priority,
    )


def _number(value) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- what a hand-off requires ---


@dataclass(frozen=True)
class Requirement:
    language: str
    channel: str
    required: Mapping[str, int]  # skill -> minimum level
    preferred: tuple[str, ...]
    priority: int


def channel_of(channel: pb.Channel) -> str:
    """The capacity bucket of a contact channel."""
    return {pb.CHANNEL_EMAIL: "email", pb.CHANNEL_SMS: "sms", pb.CHANNEL_VOICE_TRANSCRIPT: "voice"}.get(channel, "chat")


def sentiments(context: pb.ConversationContext) -> set[str]:
    found = set()
    reasons = set(context.reasons or [context.reason])
    if pb.HANDOFF_REASON_ANGER in reasons:
        found.add("anger")
    if pb.HANDOFF_REASON_DISTRESS in reasons:
        found.add("distress")
    if pb.HANDOFF_REASON_ESCALATING_SENTIMENT in reasons:
        found.add("escalating")
    if context.turns:
        last = context.turns[-1].classification.sentiment
        found |= {
            name
            for name, flag in (("anger", last.anger), ("distress", last.distress), ("urgency", last.urgency))
            if flag
        }
    return found


def requirement(
    context: pb.ConversationContext, rules: RoutingRules, skill_by_intent: Mapping[str, str]
) -> Requirement:
    language = (context.language or context.customer.language or "en").lower()
    channel = channel_of(context.channel)
    facts = {
        "intent": {context.intent},
        "tier": {context.customer.tier.lower()},
        "sentiment": sentiments(context),
        "reason": {
            pb.HandoffReason.Name(r)[len("HANDOFF_REASON_") :] for r in (context.reasons or [context.reason]) if r
        },
        "channel": {channel, pb.Channel.Name(context.channel)[len("CHANNEL_") :].lower()},
        "language": {language},
    }
    preferred: list[str] = []
    reason_skill = next((rules.skill_by_reason[r] for r in sorted(facts["reason"]) if r in rules.skill_by_reason), "")
    if reason_skill:  # the reason decides who takes it (a customer who may leave: retention), whatever the intent
        required = {reason_skill: 1}
    elif person_request_only(context, rules.person_request_intents) or language_only(context):
        # "A person, please" (or a language the bot does not serve), and nothing more: any advisor of the language;
        # one who knows what the customer asked the bot before is offered it first.
        required = {}
        earlier = earlier_intent(context, rules.person_request_intents)
        if earlier in skill_by_intent:
            preferred.append(skill_by_intent[earlier])
    else:
        required = {skill_by_intent.get(context.intent, "general"): 1}
    priority = context.priority
    for rule in rules.rules:
        if all(facts[key] & values for key, values in rule.when.items()):
            for skill, level in rule.require.items():
                required[skill] = max(level, required.get(skill, 0))
            preferred += [s for s in rule.prefer if s not in preferred]
            priority += rule.priority
    return Requirement(language, channel, required, tuple(preferred), priority)


def person_request_only(context: pb.ConversationContext, person_intents: Iterable[str]) -> bool:
    """The customer asked for a person with no other intent: the hand-off's intent is none, a "person, please"
    intent, or only the classifier's guess on a message it could not place."""
    if pb.HANDOFF_REASON_CUSTOMER_REQUEST not in set(context.reasons or [context.reason]):
        return False
    if not context.intent or context.intent in person_intents:
        return True
    last = context.turns[-1].classification if context.turns else None
    return last is not None and not last.intent and last.best_guess == context.intent


def language_only(context: pb.ConversationContext) -> bool:
    """Handed off for its language alone: what the customer needs first is someone who speaks it."""
    return pb.HANDOFF_REASON_LANGUAGE_NOT_SERVED in set(context.reasons or [context.reason]) and not context.intent


def earlier_intent(context: pb.ConversationContext, person_intents: Iterable[str]) -> str:
    """The latest intent the classifier was sure of in the conversation, other than asking for a person."""
    person = set(person_intents)
    for turn in reversed(context.turns):
        c = turn.classification
        if c.intent and not c.out_of_scope and c.intent not in person:
            return c.intent
    return ""


# --- who may take it, who is best, in which order ---


@dataclass(frozen=True)
class Agent:
    agent_id: str
    languages: frozenset[str]
    levels: Mapping[str, int]
    capacity: Mapping[str, int]
    load: Mapping[str, int]  # offers and assignments held, per channel
    idle_since: float  # epoch seconds: last offer or close
    state: str = "available"


@dataclass(frozen=True)
class Task:
    task_id: str
    language: str
    channel: str
    required: Mapping[str, int]
    priority: int
    queued_at: float  # epoch seconds
    preferred: tuple[str, ...] = ()
    stage: int = 0
    declined_by: frozenset[str] = frozenset()
    due_at: float | None = None  # a callback waits until then


def effective_priority(task: Task, now: float, rules: RoutingRules) -> int:
    """Base priority plus one point per `aging_seconds_per_point` of waiting."""
    waited = max(0.0, now - task.queued_at)
    return task.priority + int(waited // rules.aging_seconds_per_point)


def overflow_stage(waited_seconds: float, rules: RoutingRules) -> int:
    """How many overflow steps apply after this long in the queue."""
    return sum(1 for step in rules.overflow if waited_seconds >= step.after_seconds)


def needs_at_stage(required: Mapping[str, int], stage: int, rules: RoutingRules) -> tuple[dict[str, int], str]:
    """The required levels and the broader queue (if any) once `stage` overflow steps applied."""
    steps = rules.overflow[:stage]
    relax = sum(s.relax_levels for s in steps)
    queue = next((s.queue for s in reversed(steps) if s.queue), "")
    return {skill: max(1, level - relax) for skill, level in required.items()}, queue


def eligible(agent: Agent, task: Task, rules: RoutingRules) -> bool:
    """Speaks the language, and has every required skill at the (relaxed) level or belongs to the broader queue."""
    if task.language not in agent.languages or agent.capacity.get(task.channel, 0) <= 0:
        return False
    needs, queue = needs_at_stage(task.required, task.stage, rules)
    if queue == ANY or (queue and agent.levels.get(queue, 0) >= 1):
        return True
    return all(agent.levels.get(skill, 0) >= level for skill, level in needs.items())


def widened_stage(task: Task, signed_in: Iterable[Agent], rules: RoutingRules) -> int | None:
    """The first overflow stage, from the task's own, at which an advisor signed in (in any state but offline: on a
    break or busy, they will come back to it) could take the task. A task nobody signed in has the skill for is
    widened at once to that stage, instead of waiting minutes for the overflow. None: no stage would do (nobody
    of the language is signed in)."""
    agents = [a for a in signed_in if a.state != "offline"]
    for stage in range(task.stage, len(rules.overflow) + 1):
        at_stage = replace(task, stage=stage)
        if any(eligible(a, at_stage, rules) for a in agents):
            return stage
    return None


def serving(task: Task, signed_in: Iterable[Agent], rules: RoutingRules) -> int:
    """How many signed-in advisors serve this task's queue: its language, its channel, its requirement at the stage
    it is (or will at once be) widened to. The expected wait is shared by them, not by everyone signed in."""
    agents = [a for a in signed_in if a.state != "offline"]
    stage = widened_stage(task, agents, rules)
    if stage is None:
        return 0
    at_stage = replace(task, stage=stage)
    return sum(1 for a in agents if eligible(a, at_stage, rules))


def has_room(agent: Agent, channel: str, load: Mapping[str, int] | None = None) -> bool:
    return agent.state in OFFERABLE and (load or agent.load).get(channel, 0) < agent.capacity.get(channel, 0)


def match(agent: Agent, task: Task) -> tuple[int, int]:
    """Skill match, higher is better: preferred skills held, then levels on the required skills."""
    return (
        sum(1 for s in task.preferred if agent.levels.get(s, 0) >= 1),
        sum(agent.levels.get(s, 0) for s in task.required),
    )


def best_agent(task: Task, agents: Iterable[Agent], rules: RoutingRules) -> Agent | None:
    """The best eligible agent with room: skill match first, then longest idle — what `assign` chooses for a task
    alone. One pass, the task's needs worked out once: this is the decision for each new hand-off, over every
    signed-in agent."""
    needs, queue = needs_at_stage(task.required, task.stage, rules)
    needs_items = tuple(needs.items())
    channel, language, declined, preferred = task.channel, task.language, task.declined_by, task.preferred
    required = tuple(task.required)
    best, best_key = None, None
    for a in agents:
        if a.state not in OFFERABLE or language not in a.languages:
            continue
        capacity = a.capacity.get(channel, 0)
        if capacity <= 0 or a.load.get(channel, 0) >= capacity or a.agent_id in declined:
            continue
        levels = a.levels
        if not (queue == ANY or (queue and levels.get(queue, 0) >= 1)):
            if any(levels.get(skill, 0) < level for skill, level in needs_items):
                continue
        key = (
            -sum(1 for s in preferred if levels.get(s, 0) >= 1),
            -sum(levels.get(s, 0) for s in required),
            a.idle_since,
            a.agent_id,
        )
        if best_key is None or key < best_key:
            best, best_key = a, key
    return best


def needs_signature(task: Task) -> tuple:
    """What `ranking` depends on: tasks with the same signature rank the same agents the same way."""
    return task.language, task.channel, tuple(sorted(task.required.items())), task.preferred, task.stage


def ranking(task: Task, agents: Iterable[Agent], rules: RoutingRules) -> tuple[tuple[str, ...], ...]:
    """The agents who could take a task with these needs (needs_signature) whenever they have room — its language, a
    capacity on its channel, the skills at its stage — grouped by skill match, best group first. Only their profiles
    count, which change at sign-in alone; what every offer changes (state, load, idle time) is `best_ranked`'s."""
    groups: dict[tuple[int, int], list[str]] = {}
    for a in agents:
        if eligible(a, task, rules):
            groups.setdefault(match(a, task), []).append(a.agent_id)
    return tuple(tuple(groups[key]) for key in sorted(groups, reverse=True))


def best_ranked(
    task: Task, groups: Sequence[Sequence[str]], agents: Mapping[str, Agent], connected: Container[str]
) -> Agent | None:
    """best_agent's choice among `agents` (by id) that are `connected`, from the task's `ranking`: in the first group
    with someone who can take it now (an offerable state, room on its channel, not declined by them), the longest idle.
    A hand-off reads only the best groups' agents, not all of them."""
    channel, declined = task.channel, task.declined_by
    for group in groups:
        best = None
        for agent_id in group:
            a = agents.get(agent_id)
            if (
                a is None
                or agent_id not in connected
                or a.state not in OFFERABLE
                or agent_id in declined
                or a.load.get(channel, 0) >= a.capacity.get(channel, 0)
            ):
                continue
            if best is None or (a.idle_since, agent_id) < (best.idle_since, best.agent_id):
                best = a
        if best is not None:
            return best
    return None


def queue_order(tasks: Iterable[Task], now: float, rules: RoutingRules) -> list[Task]:
    """Highest effective priority first, then longest waiting."""
    return sorted(tasks, key=lambda t: (-effective_priority(t, now, rules), t.queued_at, t.task_id))


def assign(tasks: Sequence[Task], agents: Sequence[Agent], now: float, rules: RoutingRules) -> list[tuple[str, str]]:
    """Offers for one pass over the queue: (task_id, agent_id), the queue's order respected."""
    load = {a.agent_id: dict(a.load) for a in agents}
    given = {a.agent_id: 0 for a in agents}
    room = [a for a in agents if a.state in OFFERABLE]
    if not any(has_room(a, channel) for a in room for channel in a.capacity):
        return []
    by_signature: dict[tuple, list[Agent]] = {}  # eligibility is the same for tasks with the same needs
    offers = []
    for task in queue_order(tasks, now, rules):
        if task.due_at is not None and task.due_at > now:
            continue
        signature = (task.language, task.channel, tuple(sorted(task.required.items())), task.stage)
        if signature not in by_signature:
            by_signature[signature] = [a for a in room if eligible(a, task, rules)]
        eligible_agents = by_signature[signature]
        # Those who declined are asked again only when nobody else who could take it is signed in.
        if any(a.agent_id not in task.declined_by for a in eligible_agents):
            eligible_agents = [a for a in eligible_agents if a.agent_id not in task.declined_by]
        candidates = [
            a for a in eligible_agents if load[a.agent_id].get(task.channel, 0) < a.capacity.get(task.channel, 0)
        ]
        if not candidates:
            continue
        best = min(
            candidates, key=lambda a: (tuple(-x for x in match(a, task)), given[a.agent_id], a.idle_since, a.agent_id)
        )
        load[best.agent_id][task.channel] = load[best.agent_id].get(task.channel, 0) + 1
        given[best.agent_id] += 1
        offers.append((task.task_id, best.agent_id))
    return offers


# --- agent states ---


def state_after_release(state: str, active_left: int, closed: bool) -> str:
    """An agent's state once a task leaves it: busy while it holds others; wrap-up after closing its last."""
    if state not in ("available", "busy"):
        return state  # break / wrap-up / offline stay as they are
    if active_left > 0:
        return "busy"
    return "wrap_up" if closed else "available"


SETTABLE_STATES = ("available", "break")  # what an agent may ask for; routing sets busy and wrap-up, SignOut offline


def settable_state(current: str | None, wanted: str, holding: int = 0) -> str | None:
    """The state an agent in `current` gets when it asks for `wanted`: available or break, but busy when it asks for
    available while holding tasks (`holding`: offered or assigned). None: refused (busy, wrap-up, offline)."""
    if wanted not in SETTABLE_STATES:
        return None
    return "busy" if wanted == "available" and holding else wanted


def offered(agent: Agent, channel: str, now: float) -> Agent:
    """The agent once it got an offer on `channel`: one more task held there, busy, idle from now."""
    return replace(agent, load={**agent.load, channel: agent.load.get(channel, 0) + 1}, idle_since=now, state="busy")


# --- a held task waiting again ---


@dataclass(frozen=True)
class Requeue:
    """How a task an agent held waits again: its overflow stage, who may not be offered it, what the next advisor reads
    (`note`), what its task step says (`detail`); with `required`, new needs (and `preferred` agents) replace its own."""

    stage: int
    declined_by: tuple[str, ...]
    note: str = ""
    detail: str = ""
    required: Mapping[str, int] | None = None
    preferred: tuple[str, ...] = ()


def requeue_after_leaving(agent_id: str, signed_out: bool) -> Requeue:
    """An open conversation of an agent who signed out or was disconnected: back to its first stage, not to that agent,
    ahead of newcomers (its first queued_at kept, which the store does not touch)."""
    why = "signed out" if signed_out else "was disconnected"
    return Requeue(stage=0, declined_by=(agent_id,), note=f"the previous advisor {why}", detail=f"agent {why}")


def transferred(queue: str, agent_id: str) -> Requeue:
    """A conversation transferred to a queue (a skill): it needs that skill at level 1 from its first stage, with no
    preferred agent, not the one who transferred it; it waits from now."""
    return Requeue(stage=0, declined_by=(agent_id,), required={queue: 1}, preferred=())


# --- the ticker: what it acts on, and when waiting tasks are offered again ---


def full_pass(ticks: int, tick_seconds: float) -> bool:
    """Every ~30 s the ticker's step runs whatever it found due, and offers waiting tasks again: a safety net."""
    return ticks % max(1, round(30 / tick_seconds)) == 0


def overflow_steps(rules: RoutingRules) -> list[float]:
    """The overflow steps' after_seconds, as the ticker's reads take them."""
    return [step.after_seconds for step in rules.overflow]


@dataclass(frozen=True)
class TickFindings:
    """What the ticker's step did or found."""

    full_pass: bool = False
    signed_out: bool = False  # an agent disconnected too long was signed out
    offers_expired: bool = False  # offers timed out, back to the queue
    wrap_ups_over: bool = False  # agents available again
    overflowed: bool = False  # tasks reached their next overflow stage
    widened: bool = False  # tasks nobody signed in could take were widened
    callback_due: bool = False  # callbacks came due


def redispatch(found: TickFindings) -> bool:
    """Waiting tasks are offered again after a tick only when something may let one be offered now: aging alone changes
    no one's eligibility, and new tasks, closes, rejects and sign-ins dispatch in their own transactions."""
    return any(
        (
            found.full_pass,
            found.signed_out,
            found.offers_expired,
            found.wrap_ups_over,
            found.overflowed,
            found.widened,
            found.callback_due,
        )
    )


def widen_every(full: bool, signed_in: str, signed_in_seen: str | None) -> bool:
    """Widening looks at every waiting task at the full pass and when who is signed in changed; else at those
    (re)queued in the last seconds."""
    return full or signed_in != signed_in_seen


def tick_idle(due: Mapping[str, object], signed_in_seen: str | None, reconnect_over: bool) -> bool:
    """The tick's step would find nothing to do, as store.TICK_DUE says: nobody disconnected for too long, who is
    signed in unchanged, no offer expired, no wrap-up over, no overflow step due, nothing to widen, no callback due."""
    if reconnect_over:
        return False
    return due["signed_in"] == signed_in_seen and not (
        due["expired"] or due["wrap_up_over"] or due["overflow"] or due["widen"] or due["callback"]
    )


def text_languages(language: str, available: Iterable[str]) -> tuple[str, ...]:
    """The languages a routing message is written in: the customer's when we have its texts, else English and French."""
    return (language,) if language in available else ("en", "fr")


# --- the center's opening hours, and times told to the customer ---


def is_open(at: datetime, center: Center) -> bool:
    if not center.opening_hours:
        return True
    local = at.astimezone(center.zone)
    now = local.time().replace(tzinfo=None)
    return any(
        opens <= now and (now < closes or closes == time.max)
        for opens, closes in center.opening_hours.get(local.weekday(), ())
    )


def next_opening(at: datetime, center: Center) -> datetime | None:
    """`at` when the center is open then, else when it next opens; None when it never does."""
    if is_open(at, center):
        return at
    zone = center.zone
    local = at.astimezone(zone)
    for days in range(8):
        day = local.date() + timedelta(days=days)
        for opens, _ in center.opening_hours.get(day.weekday(), ()):
            start = datetime.combine(day, opens, tzinfo=zone)
            if start > local:
                return start.astimezone(timezone.utc)
    return None


def callback_due(now: datetime, wait_seconds: int | None, center: Center) -> datetime:
    """When an advisor calls back: once the expected wait is over (at once when nobody serves the queue: as soon as
    an advisor is there), moved to the next opening when the center is closed then."""
    at = now + timedelta(seconds=wait_seconds or 0)
    return next_opening(at, center) or at


def zone_of(value: str) -> tzinfo | None:
    """An IANA time zone ("Europe/Paris") or a UTC offset ("+02:00"); None when it is neither."""
    return customer_contact.time_zone(value)


def customer_zone(time_zone: str, center: Center) -> tzinfo:
    """The customer's time zone as the event gave it, else the center's."""
    return zone_of(time_zone) or center.zone


# --- waiting customers ---


def queue_position(task_id: str, tasks: Sequence[Task], now: float, rules: RoutingRules) -> int:
    """1-based position among the waiting tasks of the same language."""
    mine = next(t for t in tasks if t.task_id == task_id)
    same = [t for t in tasks if t.language == mine.language and (t.due_at is None or t.due_at <= now)]
    return 1 + next(i for i, t in enumerate(queue_order(same, now, rules)) if t.task_id == task_id)


def queue_positions(tasks: Sequence[Task], now: float, rules: RoutingRules) -> dict[str, int]:
    """Every waiting task's position in its language's queue, in one pass."""
    positions: dict[str, int] = {}
    counts: dict[str, int] = {}
    for t in queue_order([t for t in tasks if t.due_at is None or t.due_at <= now], now, rules):
        counts[t.language] = counts.get(t.language, 0) + 1
        positions[t.task_id] = counts[t.language]
    return positions


def expected_wait_seconds(position: int, recent_handle_seconds: float | None, agents: int, rules: RoutingRules) -> int:
    """Tasks ahead and this one, times a recent handling time, shared by the agents who serve the queue."""
    handle = recent_handle_seconds or rules.default_handle_seconds
    return int(round(position * handle / max(agents, 1)))


@dataclass(frozen=True)
class Waiting:
    """What a waiting customer is told."""

    position: int
    wait_seconds: int | None  # None: nobody serves the queue, so no wait is promised
    callback_offered: bool
    closed: bool = False  # the center is closed now
    opens_at: datetime | None = None  # nobody there and the center closed: when it opens


def waiting(
    position: int, recent_handle_seconds: float | None, serving_agents: int, now: datetime, rules: RoutingRules
) -> Waiting:
    """An expected wait only when advisors serve the queue; with nobody there, that is said (with the center's next
    opening when it is closed) and a callback is offered."""
    closed = not is_open(now, rules.center)
    if serving_agents <= 0:
        return Waiting(position, None, True, closed, next_opening(now, rules.center) if closed else None)
    wait = expected_wait_seconds(position, recent_handle_seconds, serving_agents, rules)
    return Waiting(position, wait, wait > rules.callback_above_seconds, closed)


# --- what the customer writes: leaving, a callback, a closing pleasantry ---
# On folded text (lower case, no accents, one apostrophe). Commands (relais.common.queue_words) count when a whole
# clause says them ("Bon, stop, j'abandonne" leaves; "stop charging my card twice" does not); phrases count anywhere,
# unless negated before.

CLAUSES = re.compile(r"[.!?,;:\n()\[\]\"«»…]+|\s+-\s+|\s+(?:et|and|mais|but)\s+")
NEGATION = re.compile(
    r"(?:\bne\b|\bn'|\bpas\b|\bjamais\b|\bdon'?t\b|\bdo not\b|\bdoesn'?t\b|\bnever\b|\bnot\b|\bno need\b"
    r"|\bwon'?t\b)"
)
LEAVE_PHRASES = [
    re.compile(p)
    for p in (
        r"\bj'? ?abandonne\b",
        r"\bje laisse tomber\b",
        r"\blaissez tomber\b",
        r"\blaisse tomber\b",
        r"\btant pis\b",
        r"\bje m'en vais\b",
        r"\bje pars\s*$",
        r"\bje quitte(?: la file| la conversation)?\s*$",
        r"\bje (?:n'?attends|attends) plus\b",
        r"\bje (?:ne )?veux plus attendre\b",
        r"\bmarre d'attendre\b",
        r"\bje (?:reviendrai|repasserai|reessaierai|reessayerai|rappellerai|vous rappellerai)\b",
        r"\b(?:quitter|sortir de) la file\b",
        r"\bannul(?:er|ez) ma demande\b",
        r"\bi give up\b",
        r"\bgiving up\b",
        r"\bforget it\b",
        r"\bnever ?mind\b",
        r"\bi'?m (?:out|off)\s*$",
        r"\bi'?m leaving\s*$",
        r"\bi(?: will|'ll| ll) leave\b",
        r"\b(?:leave|quit) the queue\b",
        r"\bi(?: will|'ll| ll) (?:come back|try again|try later|call back|call you back|call again)\b",
        r"\b(?:don't|do not|dont) want to wait\b",
        r"\bcan'?t wait any ?(?:longer|more)\b",
        r"\b(?:i'?m )?done waiting\b",
        r"\bno longer (?:want to )?wait\b",
        r"\bcancel my request\b",
    )
]
CALLBACK_PHRASES = [
    re.compile(p)
    for p in (
        r"\brappel+ez?[- ]?moi\b",
        r"\b(?:etre|soit|sois) rappele(?:e|s|es)?\b",
        r"\b(?:vous|pouvez|pourriez|voulez|voudriez|on|quelqu'un|conseiller|possible|merci de|prie de|faut)\b.*\bme rappeler"
        r"(?:\s*$|\s+(?:plutot|svp|stp|s'il|au|sur|demain|plus tard|ce soir|cet|ce matin|dans|vers|quand|des que|lorsque"
        r"|rapidement|vite|merci|a \d|a \w+h|aujourd'hui|" + "|".join(WEEKDAYS["fr"]) + r")\b)",
        r"\b(?:qu'on|que vous|qu'un conseiller|que quelqu'un) me (?:rappelle|rappeliez)\b",
        r"\b(?:voudrais|veux|souhaite|souhaiterais|prefere|prefererais|demande|aimerais|possible d'avoir|plutot)\b.*"
        r"\b(?:un|le) rappel\b(?! de\b| d')",
        r"\bcall me back\b",
        r"\b(?:ring|phone) me back\b",
        r"\bcall-?back\b",
        r"\b(?:a|get a|want a|prefer a|like a|request a) call ?back\b",
        r"\b(?:can|could|would|will) (?:you|someone|somebody|an advisor|an agent|a person|one of you) (?:please )?"
        r"(?:call|ring|phone)(?: me)?(?: back)?\s*$",
        r"\b(?:can|could|would|will) (?:you|someone|somebody|an advisor|an agent|a person|one of you) (?:please )?"
        r"(?:call|ring|phone) me\b",
        r"\bplease (?:call|ring|phone) me\b",
        r"\b(?:rather|prefer to|like to|want to) be called\b",
        r"\bgive me a (?:call|ring)\b",
        r"\bcall me (?:instead|later|tomorrow|asap|please|when|on|at)\b",
    )
]
PLEASANTRIES = {
    "merci",
    "merci beaucoup",
    "merci bien",
    "mille mercis",
    "mille merci",
    "merci infiniment",
    "merci pour tout",
    "merci pour votre aide",
    "merci pour ton aide",
    "merci de votre aide",
    "merci a vous",
    "merci a toi",
    "merci pour l'info",
    "merci pour l'information",
    "merci pour votre reponse",
    "je vous remercie",
    "remerciements",
    "thanks",
    "thank you",
    "thanks a lot",
    "thank you very much",
    "thank you so much",
    "thanks so much",
    "many thanks",
    "thanks again",
    "thank you again",
    "thx",
    "ty",
    "cheers",
    "thanks for your help",
    "thank you for your help",
    "thanks for the help",
    "much appreciated",
    "appreciated",
    "thanks a million",
    *FAREWELLS,
    "bonne journee",
    "bonne soiree",
    "bonne fin de journee",
    "bon week-end",
    "bon weekend",
    "bonne nuit",
    "a vous aussi",
    "vous aussi",
    "toi aussi",
    "de meme",
    "pareillement",
    "have a nice day",
    "have a good day",
    "have a great day",
    "have a nice evening",
    "have a good one",
    "you too",
    "same to you",
    "take care",
    "parfait",
    "super",
    "top",
    "genial",
    "nickel",
    "impeccable",
    "excellent",
    "tres bien",
    "c'est parfait",
    "c'est bon",
    "c'est note",
    "c'est tout",
    "c'est gentil",
    "tres gentil",
    "tres aimable",
    "ca marche",
    "ca roule",
    "d'accord",
    "daccord",
    "dac",
    "entendu",
    "compris",
    "ok",
    "okay",
    "ok merci",
    "cool",
    "great",
    "perfect",
    "awesome",
    "brilliant",
    "lovely",
    "wonderful",
    "fine",
    "good",
    "all good",
    "that's all",
    "thats all",
    "that's it",
    "thats it",
    "nothing else",
    "rien d'autre",
    "c'est tout pour moi",
    "got it",
    "noted",
    "understood",
    "sounds good",
    "will do",
    "no problem",
    "pas de souci",
    "pas de soucis",
    "de rien",
    "avec plaisir",
    "beaucoup",
    "a lot",
    "very much",
    "so much",
    "encore",
    "again",
    "bien",
    "vraiment",
    "really",
    "tres",
    "very",
    "oui",
    "yes",
    "yep",
    "yeah",
    "et",
    "and",
    "a tous",
    "pour tout",
    "tout",
    "bon",
    "alors",
    "voila",
    "ah",
    "oh",
}


def _clauses(text: str) -> list[str]:
    return [c.strip() for c in CLAUSES.split(fold(text).replace("’", "'")) if c and c.strip()]


def _words(clause: str) -> list[str]:
    return re.sub(r"[^\w'\s-]", " ", clause).replace(" - ", " ").split()


def _made_of(clause: str, phrases: Collection[str]) -> bool:
    """The clause is a sequence of these phrases and nothing else (longest phrase first at each word)."""
    words, at = _words(clause), 0
    longest = max(len(p.split()) for p in phrases)
    while at < len(words):
        for n in range(min(longest, len(words) - at), 0, -1):
            if " ".join(words[at : at + n]) in phrases:
                at += n
                break
        else:
            return False
    return True


def _says(clause: str, commands: Collection[str]) -> bool:
    """The clause is one of these commands, give or take filler words ("bon, stop svp")."""
    words = [w for i, w in enumerate(_words(clause)) if w not in FILLER and (i == 0 or w != _words(clause)[i - 1])]
    return " ".join(words).replace("-", " ") in {c.replace("-", " ") for c in commands}


def _phrase(clause: str, patterns) -> bool:
    """One of the patterns, not negated by the few words before it ("ne me rappelez pas", "don't call me back")."""
    for pattern in patterns:
        for match in pattern.finditer(clause):
            if not NEGATION.search(" ".join(clause[: match.start()].split()[-4:])):
                return True
    return False


def customer_choice(text: str, callback_offered: bool = True) -> str | None:
    """What a waiting customer's message chooses: "leave", "callback" (only when one was offered) or None (a message
    for the advisor). Understood inside a sentence, in French and English; a callback asked for together with
    stopping ("stop, rappelez-moi plutôt") is a callback."""
    clauses = _clauses(text)
    if callback_offered and any(_says(c, CALLBACK_COMMANDS) or _phrase(c, CALLBACK_PHRASES) for c in clauses):
        return "callback"
    if any(_says(c, LEAVE_COMMANDS) or _phrase(c, LEAVE_PHRASES) for c in clauses):
        return "leave"
    # "Merci, au revoir" while waiting: the customer goes.
    if (
        clauses
        and all(_made_of(c, PLEASANTRIES) for c in clauses)
        and any(_made_of(c, FAREWELLS) or any(f in c for f in FAREWELLS) for c in clauses)
    ):
        return "leave"
    return None


def closing_pleasantry(text: str, classification: pb.Classification | None = None) -> bool:
    """After the conversation ended, is this message only a thank-you or a goodbye ("Thanks a lot, bye!", "merci, au
    revoir") — nothing to answer but politeness — rather than a new request? Every clause is a pleasantry, and the
    classifier saw no request in it: no person asked for, no anger or distress, no intent it is sure of."""
    if classification is not None:
        c = classification
        if c.asks_for_human or c.sentiment.anger or c.sentiment.distress:
            return False
        if c.intent and not c.out_of_scope and c.confidence >= 0.8:
            return False
    clauses = _clauses(text)
    if not clauses:  # emoji only ("👍", "🙏")
        return bool(text.strip()) and not any(ch.isalnum() for ch in text)
    return all(_made_of(c, PLEASANTRIES) for c in clauses)
