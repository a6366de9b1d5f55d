"""The supervisors' live view, computed without I/O (docs/routing.md, "Live view").

routing's active process reads who waits and the agents' states from its database every second, and follows the
steps of tasks (task_events) as they are written; the counts of the last 15 and 30 minutes are kept here per minute
bucket, so a second costs the new steps only, whatever the traffic of the last half hour.

- offered: a task entered a queue (queued, requeued after its agent left, transferred); accepted; abandoned.
- service level: accepted within the target (RELAIS_SERVICE_LEVEL_SECONDS, 20 s, as analytics counts it) over
  accepted + abandoned, in the last 30 minutes; unset when none ended.
- expected wait: for a customer joining now, the queue ahead drains at one task per average handling time per
  signed-in agent of the language: waiting x handling / agents; unset when no agent of the language is signed in.
- "the last 15 minutes" is the current minute and the 14 before (minute buckets); 30 minutes alike.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from relais.routing import rules

BUCKET_SECONDS = 60
COUNT_MINUTES = 15  # offered, accepted, abandoned, bot answers, hand-offs
SERVICE_LEVEL_MINUTES = 30
DEFAULT_SERVICE_LEVEL_SECONDS = 20.0
STATES = ("available", "busy", "wrap_up", "break", "offline")  # always shown, 0 when nobody is in them
OFFERED_KINDS = frozenset({"queued", "requeued", "transferred"})  # a task entered a queue
COUNTED_KINDS = OFFERED_KINDS | {"accepted", "abandoned"}


def queue_of(required: Mapping[str, int], stage: int, routing_rules: rules.RoutingRules) -> str:
    """The skill queue a task overflowed to, or "" while it is in its language's queue (`any` included)."""
    _, queue = rules.needs_at_stage(required, stage, routing_rules)
    return "" if queue in ("", rules.ANY) else queue


@dataclass(frozen=True)
class Step:
    """A step of a task the live view counts (a row of task_events)."""

    at: float  # epoch seconds
    kind: str  # one of COUNTED_KINDS
    language: str
    queue: str
    waited: float = 0.0  # accepted or abandoned: seconds since the task (re)entered the queue


@dataclass
class Counts:
    offered: int = 0
    accepted: int = 0
    abandoned: int = 0
    within_target: int = 0  # accepted within the target
    handoffs: int = 0  # tasks opened by a hand-off (queued)

    def add(self, other: "Counts") -> None:
        self.offered += other.offered
        self.accepted += other.accepted
        self.abandoned += other.abandoned
        self.within_target += other.within_target
        self.handoffs += other.handoffs


@dataclass
class Window:
    """What the last minutes hold: per (language, queue) the counts of 15 minutes, and of 30 for the service level."""

    counts_15m: dict[tuple[str, str], Counts] = field(default_factory=dict)
    counts_30m: dict[tuple[str, str], Counts] = field(default_factory=dict)
    bot_answers_15m: int = 0


class Counters:
    """Steps and bot answers per minute bucket; buckets older than the service level's window are dropped."""

    def __init__(self, target_seconds: float = DEFAULT_SERVICE_LEVEL_SECONDS):
        self.target = target_seconds
        self.buckets: dict[int, dict[tuple[str, str], Counts]] = {}  # minute -> (language, queue) -> counts
        self.bot_answers: dict[int, int] = {}  # minute -> bot answers

    def add(self, step: Step) -> None:
        self.add_counted(minute_of(step.at), step.kind, step.language, step.queue, 1, int(step.waited <= self.target))

    def add_counted(self, minute: int, kind: str, language: str, queue: str, count: int, within_target: int) -> None:
        """`count` steps of one kind in one minute and queue, `within_target` of them waited at most the target (the
        database counts them so when the steps are many)."""
        if kind not in COUNTED_KINDS:
            raise ValueError(f"the live view does not count {kind!r} steps")
        counts = self.buckets.setdefault(minute, {}).setdefault((language, queue), Counts())
        if kind in OFFERED_KINDS:
            counts.offered += count
            counts.handoffs += count if kind == "queued" else 0
        elif kind == "accepted":
            counts.accepted += count
            counts.within_target += within_target
        else:
            counts.abandoned += count

    def set_bot_answers(self, per_minute: Mapping[int, int], since_minute: int) -> None:
        """The bot answers counted again from `since_minute` on (earlier minutes are kept as they were counted)."""
        for minute in [m for m in self.bot_answers if m >= since_minute]:
            del self.bot_answers[minute]
        self.bot_answers.update({m: n for m, n in per_minute.items() if m >= since_minute})

    def window(self, now: float) -> Window:
        current = minute_of(now)
        for minute in [m for m in self.buckets if m <= current - SERVICE_LEVEL_MINUTES]:
            del self.buckets[minute]
        for minute in [m for m in self.bot_answers if m <= current - COUNT_MINUTES]:
            del self.bot_answers[minute]
        out = Window(bot_answers_15m=sum(n for m, n in self.bot_answers.items() if m > current - COUNT_MINUTES))
        for minute, queues in self.buckets.items():
            if minute > current:
                continue  # a step stamped ahead of this clock: counted when its minute comes
            for key, counts in queues.items():
                out.counts_30m.setdefault(key, Counts()).add(counts)
                if minute > current - COUNT_MINUTES:
                    out.counts_15m.setdefault(key, Counts()).add(counts)
        return out


def minute_of(at: float) -> int:
    return int(at // BUCKET_SECONDS)


@dataclass(frozen=True)
class Waiting:
    """Tasks waiting in one queue (queued or offered, not yet accepted; callbacks once due)."""

    language: str
    queue: str
    count: int
    oldest_queued_at: float  # epoch seconds


def waiting_by_queue(
    groups: Iterable[tuple[str, Mapping[str, int], int, int, float]], routing_rules: rules.RoutingRules
) -> list[Waiting]:
    """Waiting tasks grouped by (language, required, stage, count, oldest queued_at), merged per queue."""
    merged: dict[tuple[str, str], Waiting] = {}
    for language, required, stage, count, oldest in groups:
        key = (language, queue_of(required, stage, routing_rules))
        seen = merged.get(key)
        if seen is not None:
            count, oldest = count + seen.count, min(oldest, seen.oldest_queued_at)
        merged[key] = Waiting(key[0], key[1], count, oldest)
    return list(merged.values())


@dataclass(frozen=True)
class AgentNow:
    state: str
    languages: tuple[str, ...]


@dataclass(frozen=True)
class QueueView:
    language: str
    queue: str
    waiting: int
    oldest_wait_seconds: float
    expected_wait_seconds: float | None
    offered_15m: int
    accepted_15m: int
    abandoned_15m: int
    service_level_30m: float | None
    answered_within_target_30m: int
    ended_30m: int
    agents_signed_in: int


@dataclass(frozen=True)
class LiveView:
    at: float
    queues: list[QueueView]
    agents_by_state: dict[str, int]
    agents_by_language: dict[str, int]
    bot_answers_15m: int
    handoffs_15m: int
    service_level_30m: float | None
    service_level_target_seconds: float


def expected_wait(waiting: int, handle_seconds: float, agents: int) -> float | None:
    """Seconds until a customer joining now is answered: the `waiting` ahead, served one per `handle_seconds` by each
    of `agents`; None when no agent is there to serve them."""
    if agents <= 0:
        return None
    return waiting * handle_seconds / agents


def service_level(within: int, ended: int) -> float | None:
    return within / ended if ended else None


def view(
    now: float,
    waiting: Iterable[Waiting],
    window: Window,
    agents: Iterable[AgentNow],
    handle_seconds: Mapping[str, float],
    default_handle_seconds: float,
    target_seconds: float,
) -> LiveView:
    """The live view at `now`: one row per queue someone waits in, or that had a step in the last 30 minutes, or per
    language some agent signed in speaks; `handle_seconds`: the recent average handling time per language."""
    agents = list(agents)
    by_state = dict.fromkeys(STATES, 0)
    by_language: dict[str, int] = {}
    for agent in agents:
        by_state[agent.state] = by_state.get(agent.state, 0) + 1
        if agent.state != "offline":
            for language in agent.languages:
                by_language[language] = by_language.get(language, 0) + 1
    waits = {(w.language, w.queue): w for w in waiting}
    keys = set(waits) | set(window.counts_30m) | {(language, "") for language in by_language}
    queues = []
    for language, queue in sorted(keys):
        w = waits.get((language, queue))
        count = w.count if w else 0
        c15 = window.counts_15m.get((language, queue), Counts())
        c30 = window.counts_30m.get((language, queue), Counts())
        signed_in = by_language.get(language, 0)
        queues.append(
            QueueView(
                language=language,
                queue=queue,
                waiting=count,
                oldest_wait_seconds=max(0.0, now - w.oldest_queued_at) if w and count else 0.0,
                expected_wait_seconds=expected_wait(
                    count, handle_seconds.get(language) or default_handle_seconds, signed_in
                ),
                offered_15m=c15.offered,
                accepted_15m=c15.accepted,
                abandoned_15m=c15.abandoned,
                service_level_30m=service_level(c30.within_target, c30.accepted + c30.abandoned),
                answered_within_target_30m=c30.within_target,
                ended_30m=c30.accepted + c30.abandoned,
                agents_signed_in=signed_in,
            )
        )
    within = sum(c.within_target for c in window.counts_30m.values())
    ended = sum(c.accepted + c.abandoned for c in window.counts_30m.values())
    return LiveView(
        at=now,
        queues=queues,
        agents_by_state=by_state,
        agents_by_language=dict(sorted(by_language.items())),
        bot_answers_15m=window.bot_answers_15m,
        handoffs_15m=sum(c.handoffs for c in window.counts_15m.values()),
        service_level_30m=service_level(within, ended),
        service_level_target_seconds=target_seconds,
    )
