"""Generated contact-center traffic with known outcomes, for testing analytics on the real broker.

`generate(profile)` writes, day by day, the conversations a real stack would produce (bot answers,
clarifications, hand-offs, acceptances, closes, abandonments, surveys, recontacts), the agents'
states and their answers to suggestions, as the very records the services publish. Next to them,
`Truth` holds what each KPI must read, counted from the scenario itself (how many stories of each
kind were written, their set waits and handling times), not from the records.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from relais.common import bus, topics
from relais.common.pb import agent_events_pb2 as ev, conversation_pb2 as pb

BOT_STEP = timedelta(seconds=20)  # between two bot answers of one conversation
INTENTS = ("order_status", "account_balance", "opening_hours", "delivery_problem")
CHANNELS = (pb.CHANNEL_CHAT, pb.CHANNEL_EMAIL, pb.CHANNEL_SMS)
REASONS = ("HANDOFF_REASON_CUSTOMER_REQUEST", "HANDOFF_REASON_ANGER", "HANDOFF_REASON_LOW_CONFIDENCE")


@dataclass(frozen=True)
class Day:
    """What one day of traffic holds."""

    contained: int = 30  # the bot resolved it, the customer did not come back
    false_contained: int = 5  # the bot "resolved" it; the customer came back on the same intent within 7 days
    late_return: int = 2  # contained; the customer came back on the same intent, but after 8 days
    other_intent_return: int = 2  # contained; the customer came back within a day on another intent
    bot_unresolved: int = 6  # the bot only asked questions; the customer left
    answered_resolved: int = 12  # handed off, answered, closed resolved
    answered_unresolved: int = 3
    abandoned: int = 2  # handed off, left while waiting
    waits: tuple[int, ...] = (5, 8, 12, 15, 18, 25, 40)  # seconds to answer, drawn in turn
    bot_csat: tuple[int, ...] = (5, 4, 5, 4, 3)  # bot contacts' CSAT answers, drawn in turn
    human_csat: tuple[int, ...] = (5, 4, 4, 2)
    nps: tuple[int, ...] = (10, 9, 8, 6, 3)
    agents: int = 3
    suggestions: tuple[int, int, int] = (6, 3, 2)  # used, edited, ignored


@dataclass
class Story:
    conversation_id: str
    customer_id: str
    intent: str
    language: str
    channel: pb.Channel
    start: datetime
    side: str  # bot | human
    bot_turns: int = 1
    contained: bool = False
    recontacted: bool = False  # counts as false containment / not first-contact resolved
    reason: str = ""
    answered: bool = False
    resolved: bool = False
    wait: float = 0.0
    handle: float = 0.0
    csat: int | None = None
    nps: int | None = None


@dataclass
class Truth:
    """Expected KPI figures per day (window start, ISO), counted from the stories."""

    days: dict[str, dict] = field(default_factory=dict)
    by_intent: dict[str, dict] = field(default_factory=dict)  # over every day: contacts, contained, false, human
    alerts: set[str] = field(default_factory=set)  # alert ids: "kind/window_start"


@dataclass
class Traffic:
    records: list[bus.Record]
    truth: Truth
    start: datetime
    end: datetime  # the range holding every day of the profile (later returns excluded)
    conversation_ids: list[str]
    agent_event_ids: list[str]


def _outcome(story: Story, kind: pb.OutcomeKind, at: datetime, suffix: str, **extra) -> bus.Record:
    record = pb.Outcome(
        outcome_id=f"{story.conversation_id}/{suffix}",
        conversation_id=story.conversation_id,
        kind=kind,
        intent=story.intent,
        language=story.language,
        channel=story.channel,
        customer_id=story.customer_id,
        **extra,
    )
    record.at.FromDatetime(at)
    return bus.Record(topics.OUTCOMES, story.conversation_id.encode(), record.SerializeToString(), [])


def story_records(story: Story) -> list[bus.Record]:
    out, at = [], story.start
    for i in range(story.bot_turns):
        last = i == story.bot_turns - 1
        kind = pb.OUTCOME_KIND_BOT_ANSWERED if story.contained and last else pb.OUTCOME_KIND_BOT_CLARIFIED
        out.append(_outcome(story, kind, at, f"bot{i}", resolved=kind == pb.OUTCOME_KIND_BOT_ANSWERED))
        if not last or story.side == "human":
            at += BOT_STEP
    end = at
    if story.side == "human":
        out.append(
            _outcome(story, pb.OUTCOME_KIND_HANDED_OFF, at, "handoff", reason=pb.HandoffReason.Value(story.reason))
        )
        if story.answered:
            assigned = at + timedelta(seconds=story.wait)
            out.append(_outcome(story, pb.OUTCOME_KIND_ASSIGNED, assigned, "assigned", agent_id="gen-agent"))
            out.append(_outcome(story, pb.OUTCOME_KIND_AGENT_REPLIED, assigned + timedelta(seconds=5), "reply"))
            end = assigned + timedelta(seconds=story.handle)
            out.append(
                _outcome(
                    story,
                    pb.OUTCOME_KIND_CLOSED,
                    end,
                    "closed",
                    agent_id="gen-agent",
                    disposition="resolved" if story.resolved else "follow_up",
                    resolved=story.resolved,
                )
            )
        else:
            end = at + timedelta(seconds=story.wait)
            out.append(_outcome(story, pb.OUTCOME_KIND_CLOSED, end, "closed", disposition="abandoned"))
    if story.csat is not None:
        out.append(
            _outcome(
                story,
                pb.OUTCOME_KIND_SURVEY,
                end + timedelta(minutes=1),
                "csat",
                survey_scale=pb.SURVEY_SCALE_CSAT,
                survey_score=story.csat,
            )
        )
    if story.nps is not None:
        out.append(
            _outcome(
                story,
                pb.OUTCOME_KIND_SURVEY,
                end + timedelta(minutes=2),
                "nps",
                survey_scale=pb.SURVEY_SCALE_NPS,
                survey_score=story.nps,
            )
        )
    return out


def story_end(story: Story) -> datetime:
    if story.side == "bot":
        return story.start + BOT_STEP * (story.bot_turns - 1)
    handoff = story.start + BOT_STEP * story.bot_turns
    return handoff + timedelta(seconds=story.wait + (story.handle if story.answered else 0))


def _agent_event(agent_id: str, state: ev.AgentState, at: datetime) -> bus.Record:
    event = ev.AgentEvent(
        event_id=str(uuid.uuid4()),
        agent_id=agent_id,
        state_changed=ev.AgentStateChanged(state=state, cause="generated"),
    )
    event.at.FromDatetime(at)
    return bus.Record(topics.AGENT_EVENTS, agent_id.encode(), event.SerializeToString(), [])


def _suggestion(agent_id: str, use: ev.SuggestionUse, at: datetime) -> bus.Record:
    event = ev.AgentEvent(
        event_id=str(uuid.uuid4()),
        agent_id=agent_id,
        suggestion_feedback=ev.SuggestionFeedback(suggestion_id=str(uuid.uuid4()), use=use, source="template"),
    )
    event.at.FromDatetime(at)
    return bus.Record(topics.AGENT_EVENTS, agent_id.encode(), event.SerializeToString(), [])


# Each agent's day: (state, hour it starts); ends offline. Break time is not signed-in time.
SHIFT = (
    (ev.AGENT_STATE_AVAILABLE, 8.0),
    (ev.AGENT_STATE_BUSY, 8.5),
    (ev.AGENT_STATE_WRAP_UP, 10.0),
    (ev.AGENT_STATE_AVAILABLE, 10.25),
    (ev.AGENT_STATE_BREAK, 12.0),
    (ev.AGENT_STATE_AVAILABLE, 12.5),
    (ev.AGENT_STATE_BUSY, 13.0),
    (ev.AGENT_STATE_AVAILABLE, 15.0),
    (ev.AGENT_STATE_OFFLINE, 16.0),
)
SHIFT_SIGNED_IN_HOURS = 7.5
SHIFT_WORKING_HOURS = 3.75  # busy 1.5 + 2, wrap-up 0.25


def generate(
    days: list[Day],
    *,
    start: datetime,
    seed: int = 0,
    cost_bot: float = 0.10,
    cost_hour: float = 30.0,
    recontact_days: float = 7.0,
    sl_seconds: float = 20.0,
) -> Traffic:
    """Traffic for consecutive days from `start` (midnight UTC), and the truth of each day."""
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]
    stories: list[Story] = []
    later: list[Story] = []
    records: list[bus.Record] = []
    agent_ids: list[str] = []
    truth = Truth()
    counter = iter(range(10**9))

    def new_story(day_start: datetime, side: str, **kwargs) -> Story:
        n = next(counter)
        story = Story(
            conversation_id=f"gen-{run}-{n}",
            customer_id=kwargs.pop("customer_id", f"gen-cust-{run}-{n}"),
            intent=kwargs.pop("intent", INTENTS[n % len(INTENTS)]),
            language=("fr", "en")[n % 2],
            channel=CHANNELS[n % len(CHANNELS)],
            start=kwargs.pop("start", day_start + timedelta(hours=1, seconds=97 * (n % 300))),
            side=side,
            **kwargs,
        )
        return story

    for index, day in enumerate(days):
        day_start = start + timedelta(days=index)
        waits, bot_csat, human_csat, nps = (iter(_cycle(v)) for v in (day.waits, day.bot_csat, day.human_csat, day.nps))
        todays: list[Story] = []

        def bot_contact(**kwargs) -> Story:
            s = new_story(day_start, "bot", contained=True, bot_turns=rng.choice((1, 2, 3)), **kwargs)
            if len(todays) % 2 == 0:
                s.csat = next(bot_csat)
            if len(todays) % 3 == 0:
                s.nps = next(nps)
            todays.append(s)
            return s

        def human_contact(answered: bool, resolved: bool, **kwargs) -> Story:
            s = new_story(
                day_start,
                "human",
                bot_turns=rng.choice((0, 1, 2)),
                reason=REASONS[len(todays) % 3],
                answered=answered,
                resolved=resolved,
                wait=float(next(waits)),
                handle=float(rng.randrange(120, 900)) if answered else 0.0,
                **kwargs,
            )
            if answered and len(todays) % 2 == 0:
                s.csat = next(human_csat)
            todays.append(s)
            return s

        for _ in range(day.contained):
            bot_contact()
        for kind in ("false", "late", "other"):
            for _ in range(
                {"false": day.false_contained, "late": day.late_return, "other": day.other_intent_return}[kind]
            ):
                first = bot_contact()
                gap = {
                    "false": timedelta(hours=2),
                    "late": timedelta(days=recontact_days + 1),
                    "other": timedelta(hours=2),
                }[kind]
                first.recontacted = kind == "false"
                back = new_story(
                    day_start,
                    "human",
                    customer_id=first.customer_id,
                    start=story_end(first) + gap,
                    intent=first.intent if kind != "other" else _other(first.intent),
                    bot_turns=0,
                    reason=REASONS[0],
                    answered=True,
                    resolved=True,
                    wait=10.0,
                    handle=300.0,
                )
                (later if kind == "late" else todays).append(back)
        for _ in range(day.bot_unresolved):
            s = bot_contact()
            s.contained = False
        for _ in range(day.answered_resolved):
            human_contact(True, True)
        for _ in range(day.answered_unresolved):
            human_contact(True, False)
        for _ in range(day.abandoned):
            human_contact(False, False)
        stories += todays

        for a in range(day.agents):
            agent_id = f"gen-agent-{run}-{index}-{a}"
            agent_ids.append(agent_id)
            records += [_agent_event(agent_id, state, day_start + timedelta(hours=hour)) for state, hour in SHIFT]
        uses = (
            [ev.SUGGESTION_USE_USED] * day.suggestions[0]
            + [ev.SUGGESTION_USE_EDITED] * day.suggestions[1]
            + [ev.SUGGESTION_USE_IGNORED] * day.suggestions[2]
        )
        records += [
            _suggestion(agent_ids[-1], use, day_start + timedelta(hours=9, seconds=i)) for i, use in enumerate(uses)
        ]

    end = start + timedelta(days=len(days))
    for story in stories + later:
        records += story_records(story)
    by_day: dict[str, list[Story]] = defaultdict(list)
    for story in stories:
        by_day[_day(story.start)].append(story)
    for index, day in enumerate(days):
        key = (start + timedelta(days=index)).isoformat()
        truth.days[key] = _expected(by_day[key], day, cost_bot, cost_hour, sl_seconds)
    _expected_alerts(truth, sorted(truth.days))
    for story in (s for day in by_day.values() for s in day if _day(s.start) in truth.days):
        counts = truth.by_intent.setdefault(
            story.intent, {"contacts": 0, "contained": 0, "false_contained": 0, "human": 0}
        )
        counts["contacts"] += 1
        counts["contained"] += story.contained
        counts["false_contained"] += story.contained and story.recontacted
        counts["human"] += story.side == "human"
    return Traffic(_per_key_order(records), truth, start, end, [s.conversation_id for s in stories + later], agent_ids)


def _per_key_order(records: list[bus.Record]) -> list[bus.Record]:
    """Keeps each key's records in event order (as one service publishes them), keys interleaved."""

    def at(r: bus.Record) -> datetime:
        message = pb.Outcome.FromString(r.value) if r.topic == topics.OUTCOMES else ev.AgentEvent.FromString(r.value)
        return message.at.ToDatetime(tzinfo=timezone.utc)

    by_key: dict[bytes, list[bus.Record]] = defaultdict(list)
    for r in records:
        by_key[r.key].append(r)
    for group in by_key.values():
        group.sort(key=at)
    out = []
    for batch in itertools.zip_longest(*by_key.values()):
        out += [r for r in batch if r is not None]
    return out


def _cycle(values):
    while True:
        yield from values


def _other(intent: str) -> str:
    return INTENTS[(INTENTS.index(intent) + 1) % len(INTENTS)]


def _day(at: datetime) -> str:
    return at.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0).isoformat()


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _expected(stories: list[Story], day: Day, cost_bot: float, cost_hour: float, sl_seconds: float) -> dict:
    bot = [s for s in stories if s.side == "bot"]
    human = [s for s in stories if s.side == "human"]
    contained = [s for s in bot if s.contained]
    answered = [s for s in human if s.answered]
    abandoned = [s for s in human if not s.answered]
    bot_fcr = sum(not s.recontacted for s in contained)
    human_fcr = sum(s.resolved for s in answered)
    interactions = sum(s.bot_turns for s in stories)
    handled = sum(s.handle for s in answered)
    mean_handle = handled / len(answered) if answered else None
    total_cost = interactions * cost_bot + handled / 3600 * cost_hour
    csat = lambda group: [s.csat for s in group if s.csat is not None]
    nps = [s.nps for s in bot if s.nps is not None]
    reasons: dict[str, int] = defaultdict(int)
    for s in human:
        reasons[s.reason] += 1
    used, edited, ignored = day.suggestions
    return {
        "contacts": len(stories),
        "contained": len(contained),
        "false_contained": sum(s.recontacted for s in contained),
        "containment_rate": _share(len(contained), len(stories)),
        "false_containment_rate": _share(sum(s.recontacted for s in contained), len(contained)),
        "fcr": _share(bot_fcr + human_fcr, len(stories)),
        "bot_contacts": len(bot),
        "bot_fcr": _share(bot_fcr, len(bot)),
        "human_contacts": len(human),
        "human_fcr": _share(human_fcr, len(human)),
        "bot_csat": _share(sum(c >= 4 for c in csat(bot)), len(csat(bot))),
        "human_csat": _share(sum(c >= 4 for c in csat(human)), len(csat(human))),
        "bot_csat_responses": len(csat(bot)),
        "bot_nps": 100.0 * (sum(n >= 9 for n in nps) - sum(n <= 6 for n in nps)) / len(nps) if nps else None,
        "handoff_rate": _share(len(human), len(stories)),
        "handoff_reasons": dict(reasons),
        "answered": len(answered),
        "abandoned": len(abandoned),
        "abandonment_rate": _share(len(abandoned), len(human)),
        "asa_seconds": sum(s.wait for s in answered) / len(answered) if answered else None,
        "service_level": _share(sum(s.wait <= sl_seconds for s in answered), len(answered) + len(abandoned)),
        "human_aht_seconds": mean_handle,
        "occupancy": SHIFT_WORKING_HOURS / SHIFT_SIGNED_IN_HOURS if day.agents else None,
        "contacts_per_agent_hour": _share(len(answered), day.agents * SHIFT_SIGNED_IN_HOURS),
        "suggestion_acceptance": _share(used + edited, used + edited + ignored),
        "bot_interactions": sum(s.bot_turns for s in bot),
        "bot_cost_per_contact": _share(sum(s.bot_turns for s in bot) * cost_bot, len(bot)),
        "human_cost_per_contact": _share(
            sum(s.bot_turns for s in human) * cost_bot + handled / 3600 * cost_hour, len(human)
        ),
        "total_cost": total_cost,
        "saving": len(stories) * (mean_handle or 0) / 3600 * cost_hour - total_cost if mean_handle else None,
    }


def _expected_alerts(
    truth: Truth,
    keys: list[str],
    min_contacts: int = 20,
    rise: float = 0.05,
    drop: float = 0.05,
    min_responses: int = 10,
    sl_target: float = 0.8,
    min_offered: int = 10,
) -> None:
    """The alerts kpis.AlertRules' defaults must raise, from the expected figures."""
    for previous, key in zip([None, *keys], keys):
        day = truth.days[key]
        if (
            day["service_level"] is not None
            and day["answered"] + day["abandoned"] >= min_offered
            and day["service_level"] < sl_target
        ):
            truth.alerts.add(f"service_level/{key}")
        if previous is None:
            continue
        before = truth.days[previous]
        if min(before["contacts"], day["contacts"]) < min_contacts:
            continue
        if day["containment_rate"] - before["containment_rate"] < rise:
            continue
        csat_fell = (
            min(before["bot_csat_responses"], day["bot_csat_responses"]) >= min_responses
            and before["bot_csat"] - day["bot_csat"] >= drop
        )
        if csat_fell or before["bot_fcr"] - day["bot_fcr"] >= drop:
            truth.alerts.add(f"over_automation/{key}")
