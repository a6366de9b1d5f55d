"""Reads of the analytics store (infra/postgres/migrations/0004_analytics.sql) into kpis' plain types."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from relais.analytics import kpis
from relais.classifier.catalogue import HUMAN_INTENT

FAR_PAST = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


async def contacts(conn, start: datetime | None, end: datetime) -> list[kpis.Contact]:
    # The ids first (index on `at`): a condition on the grouping column is pushed into the view, a subquery not.
    ids = await conn.fetchval(
        "SELECT array_agg(DISTINCT conversation_id) FROM kpi_outcomes WHERE at >= $1 AND at < $2",
        start or FAR_PAST,
        end,
    )
    rows = await conn.fetch(
        "SELECT * FROM kpi_contacts WHERE conversation_id = ANY($3) AND started_at >= $1 AND started_at < $2"
        " ORDER BY started_at, conversation_id",
        start or FAR_PAST,
        end,
        ids or [],
    )
    return [kpis.Contact(**dict(r)) for r in rows]


async def surveys(conn, conversation_ids: list[str]) -> list[kpis.Survey]:
    rows = await conn.fetch(
        "SELECT conversation_id, survey_scale, survey_score FROM kpi_outcomes"
        " WHERE kind = 'survey' AND conversation_id = ANY($1)",
        conversation_ids,
    )
    return [kpis.Survey(r["conversation_id"], r["survey_scale"], r["survey_score"]) for r in rows]


async def agent_spans(conn, start: datetime | None, end: datetime) -> list[kpis.AgentSpan]:
    """Each state from its change to the agent's next change (or `end`), overlapping [start, end)."""
    rows = await conn.fetch(
        "SELECT agent_id, state, at AS start, coalesce(next_at, $2) AS finish FROM ("
        "  SELECT agent_id, state, at, lead(at) OVER (PARTITION BY agent_id ORDER BY at, event_id) AS next_at"
        "  FROM kpi_agent_states WHERE at < $2) s"
        " WHERE coalesce(next_at, $2) > $1",
        start or FAR_PAST,
        end,
    )
    return [kpis.AgentSpan(r["agent_id"], r["state"], r["start"], min(r["finish"], end)) for r in rows]


async def suggestion_uses(conn, start: datetime | None, end: datetime) -> list[kpis.SuggestionUse]:
    rows = await conn.fetch(
        "SELECT at, use, agent_id FROM kpi_suggestions WHERE at >= $1 AND at < $2", start or FAR_PAST, end
    )
    return [kpis.SuggestionUse(r["at"], r["use"], r["agent_id"]) for r in rows]


async def agent_steps(conn, conversation_ids: list[str]) -> list[kpis.AgentStep]:
    """What agents did with these contacts: accepted, passed on, closed (the agent dimension)."""
    rows = await conn.fetch(
        "SELECT conversation_id, agent_id, kind, at, resolved AND disposition <> 'abandoned' AS resolved"
        " FROM kpi_outcomes WHERE conversation_id = ANY($1) AND agent_id <> ''"
        " AND kind IN ('assigned', 'transferred', 'closed')",
        conversation_ids,
    )
    return [kpis.AgentStep(**dict(r)) for r in rows]


@dataclass(frozen=True)
class KpiInputs:
    """Everything the KPIs of [start, end) are computed from (kpis.compute's arguments)."""

    started: list[kpis.Contact]
    later: list[kpis.Contact]  # started after the range, within the recontact window: returns only
    surveys: list[kpis.Survey]
    spans: list[kpis.AgentSpan]
    uses: list[kpis.SuggestionUse]
    steps: list[kpis.AgentStep] = field(default_factory=list)  # read for the agent dimension only


async def kpi_inputs(
    conn, start: datetime | None, end: datetime, policy: kpis.Policy, *, agents: bool = False
) -> KpiInputs:
    started = await contacts(conn, start, end)
    ids = [c.conversation_id for c in started]
    return KpiInputs(
        started,
        await contacts(conn, end, end + timedelta(days=policy.recontact_days)),
        await surveys(conn, ids),
        await agent_spans(conn, start, end),
        await suggestion_uses(conn, start, end),
        await agent_steps(conn, ids) if agents else [],
    )


def rows_of(
    inputs: KpiInputs,
    start: datetime | None,
    end: datetime,
    *,
    window: str = "",
    dimension: str = "",
    cost: kpis.CostModel,
    policy: kpis.Policy,
) -> list[kpis.KpiRow]:
    return kpis.compute(
        inputs.started,
        inputs.surveys,
        inputs.spans,
        inputs.uses,
        later=inputs.later,
        steps=inputs.steps,
        window=window,
        dimension=dimension,
        cost=cost,
        policy=policy,
        range_start=start,
        range_end=end,
    )


async def kpi_rows(
    conn,
    start: datetime | None,
    end: datetime,
    *,
    window: str = "",
    dimension: str = "",
    cost: kpis.CostModel,
    policy: kpis.Policy,
) -> list[kpis.KpiRow]:
    return rows_of(
        await kpi_inputs(conn, start, end, policy, agents=dimension == kpis.AGENT),
        start,
        end,
        window=window,
        dimension=dimension,
        cost=cost,
        policy=policy,
    )


@dataclass(frozen=True)
class Verbatim:
    conversation_id: str  # the contact: irritants count contacts, not messages
    text: str


async def verbatims(conn, start: datetime, end: datetime) -> list[Verbatim]:
    """What customers said in negative or handed-off contacts, and low survey comments, in [start, end), in
    order. Requests for a person are channel mechanics, not irritants: left out by the classifier's flag (or,
    for rows stored before the flag was, its human intent)."""
    rows = await conn.fetch(
        "SELECT v.conversation_id, v.text, v.at FROM kpi_verbatims v WHERE v.at >= $1 AND v.at < $2"
        "  AND NOT v.asks_for_human AND v.intent <> $3 AND (v.negative OR EXISTS ("
        "  SELECT 1 FROM kpi_outcomes o WHERE o.conversation_id = v.conversation_id AND o.kind = 'handed_off'))"
        " UNION ALL SELECT conversation_id, survey_comment, at FROM kpi_outcomes WHERE kind = 'survey'"
        "  AND survey_comment <> '' AND at >= $1 AND at < $2"
        "  AND ((survey_scale = 'csat' AND survey_score <= 2) OR (survey_scale = 'nps' AND survey_score <= 6))"
        " ORDER BY at, conversation_id",
        start,
        end,
        HUMAN_INTENT,
    )
    return [Verbatim(r["conversation_id"], r["text"]) for r in rows]


async def alerts(conn, start: datetime | None, end: datetime) -> list:
    """The alerts raised (kpi_alerts, written when each was published) whose window starts in [start, end)."""
    return await conn.fetch(
        "SELECT alert_id, kind, window_start, detail, raised_at FROM kpi_alerts"
        " WHERE window_start >= $1 AND window_start < $2 ORDER BY window_start, kind",
        start or FAR_PAST,
        end,
    )


async def busiest_interval(conn, start: datetime, end: datetime, minutes: float) -> tuple[datetime, int] | None:
    """The `minutes`-long interval (aligned on `start`) with the most hand-offs, and their number."""
    row = await conn.fetchrow(
        "SELECT date_bin(make_interval(secs => $3), at, $1) AS slot, count(*) FROM kpi_outcomes"
        " WHERE kind = 'handed_off' AND at >= $1 AND at < $2 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1",
        start,
        end,
        minutes * 60,
    )
    return (row["slot"], row["count"]) if row else None
