"""Routing rules, pure: what a hand-off requires, who may take it, who is best, in which order, how long.

Everything here is a plain function of plain values (no database, no broker), tested in
tests/unit/test_routing_rules.py. The declared part lives in routing_rules.yaml, loaded by `load_rules`.
"""

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from relais.common.pb import conversation_pb2 as pb

RULES_PATH = Path(__file__).with_name("routing_rules.yaml")
MAX_LEVEL = 5
CHANNELS = ("chat", "email", "sms", "voice")
ANY = "any"
OFFERABLE = ("available", "busy")  # states in which an agent receives offers, up to its capacity
STATES = ("offline", "available", "busy", "wrap_up", "break")
SENTIMENTS = ("anger", "distress", "escalating", "urgency")
CONDITIONS = ("intent", "tier", "sentiment", "reason", "channel", "language")
REASONS = {pb.HandoffReason.Name(v)[len("HANDOFF_REASON_"):]: v for v in pb.HandoffReason.values() if v}
SCALARS = {  # key -> (env override, minimum)
    "aging_seconds_per_point": ("RELAIS_ROUTING_AGING_SECONDS_PER_POINT", 0.001),
    "offer_timeout_seconds": ("RELAIS_ROUTING_OFFER_TIMEOUT_SECONDS", 0.1),
    "wrap_up_seconds": ("RELAIS_ROUTING_WRAP_UP_SECONDS", 0),
    "queue_update_seconds": ("RELAIS_ROUTING_QUEUE_UPDATE_SECONDS", 0.1),
    "callback_above_seconds": ("RELAIS_ROUTING_CALLBACK_ABOVE_SECONDS", 0),
    "default_handle_seconds": ("RELAIS_ROUTING_DEFAULT_HANDLE_SECONDS", 1),
    "reconnect_seconds": ("RELAIS_ROUTING_RECONNECT_SECONDS", 1),
}


class RulesError(ValueError):
    """The rules file is wrong; the message lists every problem."""


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


# --- loading and validation ---

def load_rules(path: Path | None = None, known_intents: Iterable[str] | None = None,
               env: Mapping[str, str] | None = None) -> RoutingRules:
    """Reads and validates the rules file ($RELAIS_ROUTING_RULES or the shipped one); env overrides timings."""
    env = os.environ if env is None else env
    path = Path(path or env.get("RELAIS_ROUTING_RULES") or RULES_PATH)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise RulesError(f"{path}: {error}") from None
    return parse_rules(doc, path.name, known_intents, env)


def parse_rules(doc, where: str = "routing_rules.yaml", known_intents: Iterable[str] | None = None,
                env: Mapping[str, str] | None = None) -> RoutingRules:
    problems: list[str] = []
    bad = lambda at, msg: problems.append(f"{where}: {at}: {msg}")
    if not isinstance(doc, dict):
        raise RulesError(f"{where}: expected a mapping with `rules`")
    known_keys = {"version", "rules", "overflow", "default_capacity", *SCALARS}
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
    overflow = []
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
    if not isinstance(capacity, dict) or not all(k in CHANNELS and isinstance(v, int) and v >= 0 for k, v in capacity.items()):
        bad("default_capacity", f"must map channels ({', '.join(CHANNELS)}) to whole numbers ≥ 0, got {capacity!r}")
        capacity = RoutingRules().default_capacity
    scalars = {}
    for key, (_, minimum) in SCALARS.items():
        if key in doc:
            if not _number(doc[key]) or doc[key] < minimum:
                bad(key, f"must be a number ≥ {minimum}, got {doc[key]!r}")
            else:
                scalars[key] = float(doc[key])
    if problems:
        raise RulesError("invalid routing rules:\n  " + "\n  ".join(problems))
    result = RoutingRules(rules=tuple(rules), overflow=tuple(overflow), default_capacity=dict(capacity), **scalars)
    return with_env(result, env or {})


def with_env(rules: RoutingRules, env: Mapping[str, str]) -> RoutingRules:
    """Timings from RELAIS_ROUTING_* variables (tests use short ones); RELAIS_ROUTING_OVERFLOW_SECONDS=60,180."""
    changes = {}
    for key, (name, minimum) in SCALARS.items():
        if env.get(name):
            value = float(env[name])
            if value < minimum:
                raise RulesError(f"{name} must be ≥ {minimum}, got {value}")
            changes[key] = value
    if env.get("RELAIS_ROUTING_OVERFLOW_SECONDS"):
        afters = [float(x) for x in env["RELAIS_ROUTING_OVERFLOW_SECONDS"].split(",")]
        if len(afters) != len(rules.overflow):
            raise RulesError(f"RELAIS_ROUTING_OVERFLOW_SECONDS needs {len(rules.overflow)} values, one per overflow step")
        changes["overflow"] = tuple(replace(s, after_seconds=a) for s, a in zip(rules.overflow, afters))
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
        allowed = {"sentiment": set(SENTIMENTS), "reason": set(REASONS), "channel": set(CHANNELS) | {"voice_transcript"},
                   "intent": intents}.get(key)
        for v in values:
            if allowed is not None and v not in allowed:
                bad(f"{at}.when.{key}", f"unknown {key} {v!r}" + (f" (known: {', '.join(sorted(allowed))})" if len(allowed) < 20 else ""))
        when[key] = frozenset(values)
    require = raw.get("require", {})
    if not isinstance(require, dict) or not all(isinstance(k, str) and isinstance(v, int) and 1 <= v <= MAX_LEVEL
                                                for k, v in require.items()):
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
    return Rule(str(raw.get("name", at)), when, {k.lower(): v for k, v in require.items()},
                tuple(s.lower() for s in prefer), priority)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- what a hand-off requires ---

@dataclass(frozen=True)
class Requirement:
    language: str
    channel: str
    required: Mapping[str, int]  # skill -> minimum level
    preferred: tuple[str, ...]
    priority: int


def channel_of(channel: int) -> str:
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
        found |= {name for name, flag in (("anger", last.anger), ("distress", last.distress), ("urgency", last.urgency)) if flag}
    return found


def requirement(context: pb.ConversationContext, rules: RoutingRules, skill_by_intent: Mapping[str, str]) -> Requirement:
    language = (context.language or context.customer.language or "en").lower()
    channel = channel_of(context.channel)
    facts = {
        "intent": {context.intent}, "tier": {context.customer.tier.lower()}, "sentiment": sentiments(context),
        "reason": {pb.HandoffReason.Name(r)[len("HANDOFF_REASON_"):] for r in (context.reasons or [context.reason]) if r},
        "channel": {channel, pb.Channel.Name(context.channel)[len("CHANNEL_"):].lower()}, "language": {language},
    }
    required = {skill_by_intent.get(context.intent, "general"): 1}
    preferred: list[str] = []
    priority = context.priority
    for rule in rules.rules:
        if all(facts[key] & values for key, values in rule.when.items()):
            for skill, level in rule.require.items():
                required[skill] = max(level, required.get(skill, 0))
            preferred += [s for s in rule.prefer if s not in preferred]
            priority += rule.priority
    return Requirement(language, channel, required, tuple(preferred), priority)


# --- who may take it, who is best, in which order ---

@dataclass(frozen=True)
class Agent:
    agent_id: str
    languages: frozenset[str]
    levels: Mapping[str, int]
    capacity: Mapping[str, int]
    load: Mapping[str, int]  # offers and assignments held, per channel
    idle_since: float        # epoch seconds: last offer or close
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


def has_room(agent: Agent, channel: str, load: Mapping[str, int] | None = None) -> bool:
    return agent.state in OFFERABLE and (load or agent.load).get(channel, 0) < agent.capacity.get(channel, 0)


def match(agent: Agent, task: Task) -> tuple[int, int]:
    """Skill match, higher is better: preferred skills held, then levels on the required skills."""
    return (sum(1 for s in task.preferred if agent.levels.get(s, 0) >= 1),
            sum(agent.levels.get(s, 0) for s in task.required))


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
        key = (-sum(1 for s in preferred if levels.get(s, 0) >= 1), -sum(levels.get(s, 0) for s in required),
               a.idle_since, a.agent_id)
        if best_key is None or key < best_key:
            best, best_key = a, key
    return best


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
        candidates = [a for a in eligible_agents if load[a.agent_id].get(task.channel, 0) < a.capacity.get(task.channel, 0)]
        if not candidates:
            continue
        best = min(candidates, key=lambda a: (tuple(-x for x in match(a, task)), given[a.agent_id], a.idle_since, a.agent_id))
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


def settable_state(current: str, wanted: str) -> str | None:
    """What an agent may ask for: available or break (routing sets busy and wrap-up). None: refused."""
    if wanted not in ("available", "break"):
        return None
    return wanted


# --- waiting customers ---

def queue_position(task_id: str, tasks: Sequence[Task], now: float, rules: RoutingRules) -> int:
    """1-based position among the waiting tasks of the same language."""
    mine = next(t for t in tasks if t.task_id == task_id)
    same = [t for t in tasks if t.language == mine.language and (t.due_at is None or t.due_at <= now)]
    return 1 + next(i for i, t in enumerate(queue_order(same, now, rules)) if t.task_id == task_id)


def queue_positions(tasks: Sequence[Task], now: float, rules: RoutingRules) -> dict[str, int]:
    """Every waiting task's position in its language's queue, in one pass."""
    positions, counts = {}, {}
    for t in queue_order([t for t in tasks if t.due_at is None or t.due_at <= now], now, rules):
        counts[t.language] = counts.get(t.language, 0) + 1
        positions[t.task_id] = counts[t.language]
    return positions


def expected_wait_seconds(position: int, recent_handle_seconds: float | None, agents: int, rules: RoutingRules) -> int:
    """Tasks ahead and this one, times a recent handling time, shared by the agents who speak the language."""
    handle = recent_handle_seconds or rules.default_handle_seconds
    return int(round(position * handle / max(agents, 1)))


LEAVE_WORDS = {"stop", "leave", "quit", "cancel", "bye", "quitter", "annuler", "je pars", "au revoir"}
CALLBACK_WORDS = {"callback", "call back", "call me back", "rappel", "rappelez moi", "rappelez-moi", "me rappeler"}


def customer_choice(text: str) -> str | None:
    """A waiting customer's short answer to the queue message: "leave", "callback" or None (a message)."""
    words = re.sub(r"[^\w\s-]", " ", text.lower()).split()
    normal = " ".join(words)
    if normal in LEAVE_WORDS:
        return "leave"
    if normal in CALLBACK_WORDS or normal.replace("-", " ") in CALLBACK_WORDS:
        return "callback"
    return None
