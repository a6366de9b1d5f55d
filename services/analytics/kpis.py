"""The KPI formulas, bot and human side by side: plain functions over what analytics stored.

A contact is a conversation. It is on the bot's side when it was never handed off, on the human
side when it was. Definitions (also in docs/analytics.md, "KPIs"):
- contained: the bot answered (resolved) and no person was involved; false containment: a contained
  contact whose customer came back on the same intent, on any channel, within `recontact_days` after it
  ended (then it counts as not resolved);
- first-contact resolution (FCR): resolved (bot: contained; human: closed as resolved by the agent) and
  no such recontact;
- abandonment: left while waiting for an agent, over contacts handed off;
- speed of answer: hand-off to the agent's acceptance; service level: answered within the threshold
  over answered + abandoned (contacts still waiting are not counted yet);
- handling time: human, acceptance to close (AHT); bot, first to last bot answer;
- occupancy: (busy + wrap-up) over signed-in time (available, busy, wrap-up); contacts per agent-hour:
  contacts closed by agents over signed-in hours; both need agents' time, so only without a dimension;
- CSAT: share of answers 4-5 on 1-5; NPS: % promoters (9-10) minus % detractors (0-6);
- cost: bot interactions x cost per interaction, plus handling hours x cost per agent hour; the
  all-human baseline prices every contact at the human handling time measured in the same row;
- per agent (dimension "agent", for coaching): the agent's part of each contact it accepted, from its acceptance
  to its close or transfer (agent_parts), with its transfers and its answers to suggestions (agent_rows).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
AGENT = "agent"  # the coaching dimension: one row per agent, from agent_rows
DIMENSIONS = ("intent", "channel", "language", AGENT)
SIGNED_IN = ("available", "busy", "wrap_up")
WORKING = ("busy", "wrap_up")


@dataclass(frozen=True)
class Contact:
    conversation_id: str
    customer_id: str
    intent: str
    language: str
    channel: str
    started_at: datetime
    ended_at: datetime
    handed_off: bool = False
    handoff_reason: str = ""
    bot_answered: bool = False  # at least one resolved bot answer
    bot_interactions: int = 0
    bot_first_at: datetime | None = None
    bot_last_at: datetime | None = None
    handed_off_at: datetime | None = None
    assigned_at: datetime | None = None
    closed_at: datetime | None = None
    abandoned: bool = False
    agent_resolved: bool = False

    @property
    def contained(self) -> bool:
        return self.bot_answered and not self.handed_off


@dataclass(frozen=True)
class Survey:
    conversation_id: str
    scale: str  # "csat" (1-5) or "nps" (0-10)
    score: int


@dataclass(frozen=True)
class AgentSpan:
    """An agent in one state from `start` to `end`."""

    agent_id: str
    state: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class SuggestionUse:
    at: datetime
    use: str  # used | edited | ignored
    agent_id: str = ""


@dataclass(frozen=True)
class AgentStep:
    """An agent accepted a contact, passed it on to a queue, or closed it (outcomes assigned, transferred, closed)."""

    conversation_id: str
    agent_id: str
    kind: str  # assigned | transferred | closed
    at: datetime
    resolved: bool = False  # closed only: as resolved, and not abandoned


@dataclass(frozen=True)
class AgentPart:
    """One agent's part of a contact: from its acceptance to its close or transfer (None: not known)."""

    conversation_id: str
    agent_id: str
    accepted_at: datetime | None
    ended_at: datetime | None = None
    ended_by: str = ""  # closed | transferred | "" (still open, or left when the agent signed out)
    resolved: bool = False

    @property
    def handling_seconds(self) -> float | None:
        if self.accepted_at and self.ended_at:
            return (self.ended_at - self.accepted_at).total_seconds()
        return None


@dataclass(frozen=True)
class Policy:
    recontact_days: float = 7.0
    service_level_seconds: float = 20.0


@dataclass(frozen=True)
class CostModel:
    bot_interaction: float = 0.10
    agent_hour: float = 30.0
    baseline_aht_seconds: float = 360.0  # all-human baseline when no person handled anything
    currency: str = "EUR"

    @classmethod
    def load(cls, path: Path | str | None = None) -> "CostModel":
        path = Path(path) if path else Path(__file__).with_name("cost_model.yaml")
        doc = yaml.safe_load(path.read_text()) or {}
        unknown = set(doc) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown cost model keys {sorted(unknown)}")
        model = cls(**doc)
        if min(model.bot_interaction, model.agent_hour, model.baseline_aht_seconds) < 0:
            raise ValueError(f"{path}: costs and times must not be negative")
        return model


@dataclass
class Side:
    contacts: int = 0
    resolved: int = 0
    fcr: float | None = None
    csat: float | None = None
    csat_mean: float | None = None
    csat_responses: int = 0
    nps: float | None = None
    nps_responses: int = 0
    handling_seconds: float | None = None
    cost_per_contact: float | None = None
    interactions: int = 0


@dataclass
class AgentFigures:
    transfers: int = 0
    transfer_rate: float | None = None
    suggestions_answered: int = 0
    suggestions_used: int = 0
    suggestions_edited: int = 0
    suggestions_ignored: int = 0
    suggestion_acceptance_rate: float | None = None


@dataclass
class KpiRow:
    window_start: str = ""
    dimension_value: str = ""
    contacts: int = 0
    bot: Side = field(default_factory=Side)
    human: Side = field(default_factory=Side)
    contained: int = 0
    false_contained: int = 0
    containment_rate: float | None = None
    false_containment_rate: float | None = None
    effective_containment_rate: float | None = None
    fcr: float | None = None
    handoff_rate: float | None = None
    handoff_reasons: dict[str, int] = field(default_factory=dict)
    abandoned: int = 0
    abandonment_rate: float | None = None
    asa_seconds: float | None = None
    service_level: float | None = None
    occupancy: float | None = None
    contacts_per_agent_hour: float | None = None
    suggestion_acceptance: float | None = None
    total_cost: float | None = None
    all_human_cost: float | None = None
    saving: float | None = None
    answered: int = 0
    agent: AgentFigures | None = None  # dimension "agent" only

    def to_dict(self) -> dict:
        """JSON-ready, without the figures that have no data (None)."""
        return _drop_none(asdict(self))


def _drop_none(value):
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def window_start(at: datetime, window: str) -> datetime:
    at = at.astimezone(timezone.utc)
    return (
        at.replace(minute=0, second=0, microsecond=0)
        if window == "hour"
        else at.replace(hour=0, minute=0, second=0, microsecond=0)
    )


def recontacted(contacts: Iterable[Contact], days: float) -> set[str]:
    """Conversations whose customer started another one on the same intent within `days` after it ended."""
    by_key: dict[tuple[str, str], list[Contact]] = defaultdict(list)
    for c in contacts:
        if c.customer_id and c.intent:
            by_key[(c.customer_id, c.intent)].append(c)
    window = timedelta(days=days)
    found = set()
    for group in by_key.values():
        starts = sorted(c.started_at for c in group)
        for c in group:
            if any(c.started_at < s and s <= c.ended_at + window for s in starts):
                found.add(c.conversation_id)
    return found


def nps(scores: Sequence[int]) -> float | None:
    if not scores:
        return None
    return 100.0 * (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores)


def side_kpis(
    contacts: Sequence[Contact], surveys: dict[str, list[Survey]], back: set[str], cost: CostModel, human: bool
) -> Side:
    side = Side(contacts=len(contacts), interactions=sum(c.bot_interactions for c in contacts))
    side.resolved = sum(
        (c.agent_resolved if human else c.contained) and c.conversation_id not in back for c in contacts
    )
    side.fcr = ratio(side.resolved, side.contacts)
    _survey_figures(side, [s for c in contacts for s in surveys.get(c.conversation_id, ())])
    side.handling_seconds = mean(
        [s for c in contacts if (s := handling_seconds(c)) is not None]
        if human
        else [(c.bot_last_at - c.bot_first_at).total_seconds() for c in contacts if c.bot_first_at and c.bot_last_at]
    )
    side.cost_per_contact = ratio(sum(contact_cost(c, cost) for c in contacts), side.contacts)
    return side


def _survey_figures(side: Side, answers: Iterable[Survey]) -> None:
    answers = list(answers)
    csat = [s.score for s in answers if s.scale == "csat"]
    promoters = [s.score for s in answers if s.scale == "nps"]
    side.csat_responses, side.nps_responses = len(csat), len(promoters)
    side.csat = ratio(sum(s >= 4 for s in csat), len(csat))
    side.csat_mean = mean(csat)
    side.nps = nps(promoters)


def handling_seconds(c: Contact) -> float | None:
    """Acceptance to close, for contacts an agent closed."""
    if c.assigned_at and c.closed_at and not c.abandoned:
        return (c.closed_at - c.assigned_at).total_seconds()
    return None


def contact_cost(c: Contact, cost: CostModel) -> float:
    return c.bot_interactions * cost.bot_interaction + (handling_seconds(c) or 0.0) / 3600 * cost.agent_hour


def row_kpis(
    contacts: Sequence[Contact], surveys: dict[str, list[Survey]], back: set[str], cost: CostModel, policy: Policy
) -> KpiRow:
    bot_side = [c for c in contacts if not c.handed_off]
    human_side = [c for c in contacts if c.handed_off]
    row = KpiRow(
        contacts=len(contacts),
        bot=side_kpis(bot_side, surveys, back, cost, False),
        human=side_kpis(human_side, surveys, back, cost, True),
    )
    row.contained = sum(c.contained for c in contacts)
    row.false_contained = sum(c.contained and c.conversation_id in back for c in contacts)
    row.containment_rate = ratio(row.contained, row.contacts)
    row.false_containment_rate = ratio(row.false_contained, row.contained)
    row.effective_containment_rate = ratio(row.contained - row.false_contained, row.contacts)
    row.fcr = ratio(row.bot.resolved + row.human.resolved, row.contacts)
    row.handoff_rate = ratio(len(human_side), row.contacts)
    reasons: dict[str, int] = defaultdict(int)
    for c in human_side:
        reasons[c.handoff_reason or "HANDOFF_REASON_UNSPECIFIED"] += 1
    row.handoff_reasons = dict(sorted(reasons.items()))
    waits = [
        (assigned - handed).total_seconds()
        for c in human_side
        if (assigned := c.assigned_at) and (handed := c.handed_off_at)
    ]
    row.answered = len(waits)
    row.abandoned = sum(c.abandoned and not c.assigned_at for c in human_side)
    row.abandonment_rate = ratio(row.abandoned, len(human_side))
    row.asa_seconds = mean(waits)
    row.service_level = ratio(sum(w <= policy.service_level_seconds for w in waits), len(waits) + row.abandoned)
    if contacts:
        row.total_cost = sum(contact_cost(c, cost) for c in contacts)
        human_seconds = mean([h for c in human_side if (h := handling_seconds(c)) is not None])
        per_contact = (
            (human_seconds if human_seconds is not None else cost.baseline_aht_seconds) / 3600 * cost.agent_hour
        )
        row.all_human_cost = len(contacts) * per_contact
        row.saving = row.all_human_cost - row.total_cost
    return row


def agent_time(spans: Iterable[AgentSpan], start: datetime | None, end: datetime | None) -> dict[str, float]:
    """Seconds per state within [start, end) (None: unbounded)."""
    seconds: dict[str, float] = defaultdict(float)
    for s in spans:
        lo = max(s.start, start) if start else s.start
        hi = min(s.end, end) if end else s.end
        if hi > lo:
            seconds[s.state] += (hi - lo).total_seconds()
    return seconds


def compute(
    contacts: Sequence[Contact],
    surveys: Iterable[Survey] = (),
    spans: Iterable[AgentSpan] = (),
    suggestions: Iterable[SuggestionUse] = (),
    *,
    later: Iterable[Contact] = (),
    steps: Iterable[AgentStep] = (),
    window: str = "",
    dimension: str = "",
    cost: CostModel = CostModel(),
    policy: Policy = Policy(),
    range_start: datetime | None = None,
    range_end: datetime | None = None,
) -> list[KpiRow]:
    """KPI rows per window (by start) and dimension value, sorted.

    `contacts` are those that started in the range; `later` those that started after it, which only serve
    to find recontacts. Agents' time and suggestion answers are split by window, not by dimension (except
    the agent dimension, which reads `steps`: agent_rows).
    """
    if window and window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}: expected one of {sorted(WINDOWS)} or none")
    if dimension and dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}: expected one of {list(DIMENSIONS)} or none")
    back = recontacted([*contacts, *later], policy.recontact_days)
    by_conversation: dict[str, list[Survey]] = defaultdict(list)
    for s in surveys:
        by_conversation[s.conversation_id].append(s)
    if dimension == AGENT:
        return agent_rows(contacts, steps, by_conversation, back, suggestions, window=window)
    spans, suggestions = list(spans), list(suggestions)
    groups: dict[tuple[datetime | None, str], list[Contact]] = defaultdict(list)
    for c in contacts:
        groups[
            (
                window_start(c.started_at, window) if window else None,
                getattr(c, dimension) or "unknown" if dimension else "",
            )
        ].append(c)
    if window and not dimension:  # agents work in windows without contacts too
        for span in spans:
            if span.state in SIGNED_IN:
                at = window_start(span.start, window)
                while at < span.end:
                    groups.setdefault((at, ""), [])
                    at += WINDOWS[window]
    if not groups and not dimension:
        groups[(None, "")] = []
    rows = []
    for (start, value), members in sorted(
        groups.items(), key=lambda kv: (kv[0][0] or datetime.min.replace(tzinfo=timezone.utc), kv[0][1])
    ):
        row = row_kpis(members, by_conversation, back, cost, policy)
        row.window_start = start.isoformat() if start else ""
        row.dimension_value = value
        if not dimension:
            lo, hi = (start, start + WINDOWS[window]) if start else (range_start, range_end)
            time = agent_time(spans, lo, hi)
            signed_in = sum(time[s] for s in SIGNED_IN)
            row.occupancy = ratio(sum(time[s] for s in WORKING), signed_in)
            closed = sum(1 for c in members if c.closed_at and not c.abandoned)
            row.contacts_per_agent_hour = ratio(closed, signed_in / 3600)
            uses = [u.use for u in suggestions if (lo is None or u.at >= lo) and (hi is None or u.at < hi)]
            row.suggestion_acceptance = ratio(sum(u in ("used", "edited") for u in uses), len(uses))
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------- per agent (coaching)

_STEP_ORDER = {"assigned": 0, "transferred": 1, "closed": 2}


def agent_parts(steps: Iterable[AgentStep]) -> list[AgentPart]:
    """Each agent's parts of each contact: an acceptance is ended by the same agent's next transfer or close. A
    transfer or close without a known acceptance (an acceptance stored before each had its own id) is a part
    without a start; an acceptance never ended (the agent signed out, the contact was requeued) one without an end.
    """
    by_conversation: dict[str, list[AgentStep]] = defaultdict(list)
    for step in steps:
        if step.agent_id and step.kind in _STEP_ORDER:
            by_conversation[step.conversation_id].append(step)
    parts = []
    for conversation_id, found in sorted(by_conversation.items()):
        accepted: dict[str, datetime] = {}
        for step in sorted(found, key=lambda s: (s.at, _STEP_ORDER[s.kind])):
            if step.kind == "assigned":
                if step.agent_id in accepted:  # accepted again before ending the first part
                    parts.append(AgentPart(conversation_id, step.agent_id, accepted[step.agent_id]))
                accepted[step.agent_id] = step.at
            else:
                parts.append(
                    AgentPart(
                        conversation_id,
                        step.agent_id,
                        accepted.pop(step.agent_id, None),
                        step.at,
                        step.kind,
                        step.kind == "closed" and step.resolved,
                    )
                )
        parts += [AgentPart(conversation_id, agent_id, at) for agent_id, at in accepted.items()]
    return parts


def agent_rows(
    contacts: Sequence[Contact],
    steps: Iterable[AgentStep],
    surveys: dict[str, list[Survey]],
    back: set[str],
    suggestions: Iterable[SuggestionUse] = (),
    *,
    window: str = "",
) -> list[KpiRow]:
    """One row per agent (and window): its parts of the contacts that started in the window, and its answers to
    suggestions given in the window. Surveys count for the agent who closed the contact."""
    started = {c.conversation_id: c.started_at for c in contacts}
    parts: dict[tuple[datetime | None, str], list[AgentPart]] = defaultdict(list)
    for part in agent_parts(s for s in steps if s.conversation_id in started):
        at = window_start(started[part.conversation_id], window) if window else None
        parts[(at, part.agent_id)].append(part)
    uses: dict[tuple[datetime | None, str], list[str]] = defaultdict(list)
    for u in suggestions:
        if u.agent_id:
            uses[(window_start(u.at, window) if window else None, u.agent_id)].append(u.use)
    rows = []
    for key in sorted(
        parts.keys() | uses.keys(), key=lambda k: (k[0] or datetime.min.replace(tzinfo=timezone.utc), k[1])
    ):
        mine, answered = parts.get(key, []), uses.get(key, [])
        side = Side(contacts=len(mine))
        side.resolved = sum(p.resolved and p.conversation_id not in back for p in mine)
        side.fcr = ratio(side.resolved, side.contacts)
        _survey_figures(side, [s for p in mine if p.ended_by == "closed" for s in surveys.get(p.conversation_id, ())])
        side.handling_seconds = mean([h for p in mine if (h := p.handling_seconds) is not None])
        transfers = sum(p.ended_by == "transferred" for p in mine)
        figures = AgentFigures(
            transfers=transfers,
            transfer_rate=ratio(transfers, len(mine)),
            suggestions_answered=len(answered),
            suggestions_used=answered.count("used"),
            suggestions_edited=answered.count("edited"),
            suggestions_ignored=answered.count("ignored"),
            suggestion_acceptance_rate=ratio(answered.count("used") + answered.count("edited"), len(answered)),
        )
        rows.append(
            KpiRow(
                window_start=key[0].isoformat() if key[0] else "",
                dimension_value=key[1],
                contacts=side.contacts,
                human=side,
                fcr=side.fcr,
                suggestion_acceptance=figures.suggestion_acceptance_rate,
                agent=figures,
            )
        )
    return rows


# --------------------------------------------------------------------------------- alerts


@dataclass(frozen=True)
class AlertRules:
    min_contacts: int = 20  # per window, on each side of a comparison
    containment_rise: float = 0.05  # absolute
    csat_drop: float = 0.05
    fcr_drop: float = 0.05
    min_csat_responses: int = 10
    service_level_target: float = 0.8
    min_offered: int = 10  # answered + abandoned in the window


@dataclass(frozen=True)
class Alert:
    kind: str  # over_automation | service_level
    window_start: str
    detail: str
    figures: dict

    @property
    def alert_id(self) -> str:
        return f"{self.kind}/{self.window_start}"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def alerts(rows: Sequence[KpiRow], rules: AlertRules = AlertRules()) -> list[Alert]:
    """Over-automation (containment up while bot CSAT or FCR down, against the previous window) and
    service level under target. `rows`: consecutive windows without a dimension, in order."""
    found = []
    for previous, row in zip([None, *rows], rows):
        offered = row.answered + row.abandoned
        if (
            row.service_level is not None
            and offered >= rules.min_offered
            and row.service_level < rules.service_level_target
        ):
            found.append(
                Alert(
                    "service_level",
                    row.window_start,
                    f"service level {row.service_level:.2f} under target {rules.service_level_target:.2f}"
                    f" ({row.answered} answered, {row.abandoned} abandoned)",
                    {"service_level": row.service_level, "target": rules.service_level_target},
                )
            )
        if previous is None or min(previous.contacts, row.contacts) < rules.min_contacts:
            continue
        if previous.containment_rate is None or row.containment_rate is None:
            continue
        rise = row.containment_rate - previous.containment_rate
        if rise < rules.containment_rise:
            continue
        csat_fell = (
            min(previous.bot.csat_responses, row.bot.csat_responses) >= rules.min_csat_responses
            and previous.bot.csat is not None
            and row.bot.csat is not None
            and previous.bot.csat - row.bot.csat >= rules.csat_drop
        )
        fcr_fell = (
            previous.bot.fcr is not None
            and row.bot.fcr is not None
            and previous.bot.fcr - row.bot.fcr >= rules.fcr_drop
        )
        if csat_fell or fcr_fell:
            found.append(
                Alert(
                    "over_automation",
                    row.window_start,
                    f"containment {_fmt(previous.containment_rate)} -> {_fmt(row.containment_rate)} while bot"
                    f" CSAT {_fmt(previous.bot.csat)} -> {_fmt(row.bot.csat)},"
                    f" bot FCR {_fmt(previous.bot.fcr)} -> {_fmt(row.bot.fcr)}",
                    {
                        "containment": [previous.containment_rate, row.containment_rate],
                        "bot_csat": [previous.bot.csat, row.bot.csat],
                        "bot_fcr": [previous.bot.fcr, row.bot.fcr],
                        "previous_window_start": previous.window_start,
                    },
                )
            )
    return found
