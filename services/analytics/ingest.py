"""Ingestion: each consumed record becomes one fact (a row of one table), and a batch's facts are stored with one
insert per table. Every fact has its own id as primary key, so a fact read again is not stored twice and no
separate deduplication is needed.

Read from relais.outcomes.v1 (outcomes of turns and conversations, surveys included), relais.agent-events.v1
(state changes, answers to suggestions) and relais.classified-turns.v1 (customers' messages, as verbatims).
Texts are redacted before they are stored; an event without a time is stamped on arrival.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from aiokafka import ConsumerRecord

from relais.common import bus, cloudevents, telemetry, topics
from relais.common.agent_events import SUGGESTION_USES
from relais.common.pb import agent_events_pb2 as ev, conversation_pb2 as pb
from relais.common.redact import redact
from relais.common.unit_of_work import Item, UnitOfWork

KIND_NAMES = {
    pb.OUTCOME_KIND_BOT_ANSWERED: "bot_answered",
    pb.OUTCOME_KIND_BOT_CLARIFIED: "bot_clarified",
    pb.OUTCOME_KIND_HANDED_OFF: "handed_off",
    pb.OUTCOME_KIND_ASSIGNED: "assigned",
    pb.OUTCOME_KIND_AGENT_REPLIED: "agent_replied",
    pb.OUTCOME_KIND_CLOSED: "closed",
    pb.OUTCOME_KIND_SURVEY: "survey",
    pb.OUTCOME_KIND_TRANSFERRED: "transferred",
}
SCALE_NAMES = {pb.SURVEY_SCALE_UNSPECIFIED: "csat", pb.SURVEY_SCALE_CSAT: "csat", pb.SURVEY_SCALE_NPS: "nps"}
NEGATIVE_SENTIMENT = -0.25


@dataclass(frozen=True)
class Fact:
    """One row to store, read from one record."""

    table: str
    values: tuple
    span_name: str = ""
    span_attributes: dict = field(default_factory=dict)


# Each table's insert of a batch of rows (one array per column); a row already there is left as it is.
INSERTS = {
    "kpi_outcomes": "INSERT INTO kpi_outcomes (outcome_id, conversation_id, customer_id, kind, intent, language, channel,"
    " reason, agent_id, disposition, resolved, survey_scale, survey_score, survey_comment, at)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
    " $7::text[], $8::text[], $9::text[], $10::text[], $11::bool[], $12::text[], $13::int[], $14::text[],"
    " $15::timestamptz[]) ON CONFLICT (outcome_id) DO NOTHING RETURNING at",
    "kpi_suggestions": "INSERT INTO kpi_suggestions (feedback_id, suggestion_id, agent_id, intent, language, source, use, at)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
    " $7::text[], $8::timestamptz[]) ON CONFLICT (feedback_id) DO NOTHING",
    "kpi_agent_states": "INSERT INTO kpi_agent_states (event_id, agent_id, state, at)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])"
    " ON CONFLICT (event_id) DO NOTHING",
    "kpi_verbatims": "INSERT INTO kpi_verbatims (turn_id, conversation_id, language, intent, sentiment, negative, text, at,"
    " asks_for_human) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::real[],"
    " $6::bool[], $7::text[], $8::timestamptz[], $9::bool[]) ON CONFLICT (turn_id) DO NOTHING",
}


def decode(record: ConsumerRecord) -> Fact:
    if record.topic == topics.AGENT_EVENTS:
        return agent_fact(bus.parse(ev.AgentEvent, record.value))
    if record.topic == topics.CLASSIFIED_TURNS:
        return verbatim_fact(bus.parse(pb.Turn, record.value))
    return outcome_fact(bus.parse(pb.Outcome, record.value))


async def store_facts(items: list[Item], unit: UnitOfWork) -> list[datetime]:
    """One insert per table for the batch; returns the times of the outcomes stored for the first time (their
    alert windows are judged again)."""
    by_table: dict[str, list[tuple]] = {}
    for item in items:
        fact = item.value
        by_table.setdefault(fact.table, []).append(fact.values)
        if fact.span_name:
            telemetry.consumed(fact.span_name, item.record, **fact.span_attributes)
    new_outcomes: list[datetime] = []
    for table, rows in by_table.items():
        inserted = await unit.db.fetch(INSERTS[table], *map(list, zip(*rows, strict=True)))
        if table == "kpi_outcomes":
            new_outcomes.extend(row["at"] for row in inserted)
    return new_outcomes


def outcome_fact(outcome: pb.Outcome) -> Fact:
    if not outcome.outcome_id or not outcome.conversation_id:
        raise bus.BadInput("outcome without outcome_id or conversation_id")
    if outcome.kind not in KIND_NAMES:
        raise bus.BadInput(f"outcome of unknown kind {outcome.kind}")
    survey = outcome.kind == pb.OUTCOME_KIND_SURVEY
    return Fact(
        "kpi_outcomes",
        (
            outcome.outcome_id,
            outcome.conversation_id,
            outcome.customer_id,
            KIND_NAMES[outcome.kind],
            outcome.intent,
            outcome.language,
            cloudevents.CHANNEL_NAMES.get(outcome.channel, ""),
            pb.HandoffReason.Name(outcome.reason) if outcome.kind == pb.OUTCOME_KIND_HANDED_OFF else "",
            outcome.agent_id,
            outcome.disposition,
            outcome.resolved,
            SCALE_NAMES[outcome.survey_scale] if survey else "",
            outcome.survey_score if survey else None,
            redact(outcome.survey_comment),
            _event_time(outcome.at),
        ),
        "analytics outcome",
        {"relais.conversation_id": outcome.conversation_id},
    )


def agent_fact(event: ev.AgentEvent) -> Fact:
    """State changes (occupancy) and answers to suggestions."""
    if not event.event_id:
        raise bus.BadInput("agent event without event_id")
    at = _event_time(event.at)
    attributes = {"relais.agent_id": event.agent_id}
    if event.HasField("suggestion_feedback"):
        feedback = event.suggestion_feedback
        if feedback.use not in SUGGESTION_USES:
            raise bus.BadInput(f"suggestion feedback with unknown use {feedback.use}")
        return Fact(
            "kpi_suggestions",
            (
                event.event_id,
                feedback.suggestion_id,
                event.agent_id,
                feedback.intent,
                feedback.language,
                feedback.source,
                SUGGESTION_USES[feedback.use],
                at,
            ),
            "analytics agent event",
            attributes,
        )
    if event.HasField("state_changed"):
        state = ev.AgentState.Name(event.state_changed.state).removeprefix("AGENT_STATE_").lower()
        return Fact(
            "kpi_agent_states", (event.event_id, event.agent_id, state, at), "analytics agent event", attributes
        )
    raise bus.BadInput("agent event without a known event")


def verbatim_fact(turn: pb.Turn) -> Fact:
    """A customer's message, redacted, as a verbatim for the irritants view (with whether it asks for a person)."""
    if not turn.turn_id or not turn.conversation_id:
        raise bus.BadInput("turn without turn_id or conversation_id")
    sentiment = turn.classification.sentiment
    negative = sentiment.score <= NEGATIVE_SENTIMENT or sentiment.anger or sentiment.distress
    return Fact(
        "kpi_verbatims",
        (
            turn.turn_id,
            turn.conversation_id,
            turn.language,
            turn.classification.intent,
            sentiment.score,
            negative,
            redact(turn.text),
            _event_time(turn.sent_at),
            turn.classification.asks_for_human,
        ),
    )


def _event_time(ts) -> datetime:
    return ts.ToDatetime(tzinfo=timezone.utc) if ts.seconds or ts.nanos else datetime.now(timezone.utc)
