"""What the active routing process keeps in memory between its transactions, without I/O: the agents' live streams,
the offerable agents' index and rankings, the waiting customers' places, who was signed in at the last widening, and
the assists drafted.
The database is the truth: each part is dropped (None) when it may be stale, and read again by the next decision."""

import asyncio
import json

from relais.common.pb import agent_desk_pb2 as desk
from relais.routing import rules
from relais.routing.places import Places

PLACES_CHECK_SECONDS = 1.0  # how long the remembered places may go unchecked against the database
# An assist job: ((turns, kind), assist drafted, agents it was pushed to): desk_view.py
AssistJob = tuple[tuple[int, str], asyncio.Future[desk.AgentAssist], set[str]]


class Memory:
    def __init__(self):
        # The agents' live Subscribe streams: only these agents get offers (an offer nobody sees holds a customer).
        self.streams: dict[str, asyncio.Queue] = {}
        # Signed-in agents without a stream here, since when (monotonic): their front end is gone, has not
        # subscribed yet, or routing restarted. They keep what they hold; after reconnect_seconds they are signed out.
        self.disconnected: dict[str, float] = {}
        self.profiles: dict[tuple[str, str], tuple] = {}  # (agent, token) -> languages, levels, capacity
        # The agents who may receive offers, with their load: read from the database when None, kept up to date by
        # offers, and dropped by any other change to an agent (this process is the only writer, under its lock).
        self.index: dict[str, rules.Agent] | None = None
        # rules.ranking of the index's agents per kind of need (rules.needs_signature): profiles only, so valid until the
        # index is read again.
        self.rankings: dict[tuple, tuple[tuple[str, ...], ...]] = {}
        # The waiting customers' places (places.py): read from the database when None, kept up to date as hand-offs are
        # queued and offered, and dropped by any other change to who waits (a withdrawn offer, a transfer, a callback...).
        self.places: Places | None = None
        self.places_checked = 0.0  # when (monotonic) they were last found to match the database
        self.signed_in_seen: str | None = None  # who was signed in at the last widening pass (store.SIGNED_IN)
        self.assists: dict[str, AssistJob] = {}

    def forget(self, signed_in: bool = False) -> None:
        """After a rollback (memory may hold what was rolled back), or with `signed_in` after another connection or
        active period (all of it may be stale)."""
        self.index, self.places = None, None
        if signed_in:
            self.signed_in_seen = None

    def agent(self, row, load: dict[str, int]) -> rules.Agent:
        """An agent as the rules see it, from a row of store.AGENT_COLUMNS."""
        # Languages, levels and capacity change only at sign-in, which also changes the token: parse them once.
        key = (row["agent_id"], row["token_sha256"])
        if key not in self.profiles:
            self.profiles[key] = (frozenset(row["languages"]), json.loads(row["levels"]), json.loads(row["capacity"]))
        languages, levels, capacity = self.profiles[key]
        return rules.Agent(row["agent_id"], languages, levels, capacity, load, float(row["idle"]), row["state"])

    def index_agents(self, rows, loads: dict[str, dict[str, int]]) -> None:
        self.index = {r["agent_id"]: self.agent(r, loads.get(r["agent_id"], {})) for r in rows}
        self.rankings = {}

    def connected(self) -> list[rules.Agent]:
        """The agents who may get offers: in the index, with a live stream here (a reconnecting agent is dispatched
        to as it subscribes)."""
        assert self.index is not None, "handlers.load_index first"
        return [agent for agent_id, agent in self.index.items() if agent_id in self.streams]

    def best_connected(self, task: rules.Task, routing_rules: rules.RoutingRules) -> rules.Agent | None:
        """rules.best_agent over the connected agents, read from the ranking of the task's needs (rules.best_ranked): a
        hand-off looks at the best-matched agents only, not at every agent signed in."""
        assert self.index is not None, "handlers.load_index first"
        signature = rules.needs_signature(task)
        groups = self.rankings.get(signature)
        if groups is None:
            groups = self.rankings[signature] = rules.ranking(task, self.index.values(), routing_rules)
        return rules.best_ranked(task, groups, self.index, self.streams)

    def offered(self, agent_id: str, channel: str, now: float) -> None:
        """The agent got an offer on `channel`: one more on its load, busy, idle from now (or read again if unknown)."""
        agent = (self.index or {}).get(agent_id)
        if self.index is None or agent is None:
            self.index = None
        else:
            self.index[agent_id] = rules.offered(agent, channel, now)

    def past_reconnect(self, unconnected: set[str], now: float, reconnect_seconds: float) -> list[str]:
        """Keeps since when each agent signed in without a stream here has been so (forgetting the others); returns
        those without one for reconnect_seconds."""
        unconnected = unconnected - set(self.streams)  # subscribed while the agents were read
        for agent_id in set(self.disconnected) - unconnected:
            del self.disconnected[agent_id]
        return [
            agent_id
            for agent_id in unconnected
            if now - self.disconnected.setdefault(agent_id, now) >= reconnect_seconds
        ]

    def push(self, agent_id: str, event: desk.DeskEvent) -> None:
        stream = self.streams.get(agent_id)
        if stream is not None:
            stream.put_nowait(event)
