"""analytics: the truth about bot and people, side by side.

Stores every fact once, at its event time: outcomes of turns and conversations (surveys included),
agents' state changes and answers to suggestions, and customers' messages redacted with their
sentiment. KPIs (relais.analytics.kpis), irritants and staffing are computed from these rows when
asked, through the gRPC Analytics API, for any window and dimension; replaying the log into an empty
store gives the same numbers. A ticker raises alerts on relais.alerts.v1: over-automation
(containment up while bot CSAT or FCR down) and service level under target, once per window each.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import grpc
from aiokafka import ConsumerRecord
from google.protobuf import json_format
from google.protobuf import message as pb_message

from relais.analytics import irritants, kpis, staffing, store
from relais.common import bus, cloudevents, outbox, telemetry, topics, worker
from relais.common.config import env
from relais.common.pb import agent_events_pb2 as ev, analytics_pb2, analytics_pb2_grpc, conversation_pb2 as pb
from relais.common.redact import redact
from relais.common.runtime import serve
from relais.common.unit_of_work import Item, UnitOfWork

log = logging.getLogger(__name__)
SOURCE = "urn:relais:analytics"
ALERT_TYPE = "relais.alert.v1"
KIND_NAMES = {pb.OUTCOME_KIND_BOT_ANSWERED: "bot_answered", pb.OUTCOME_KIND_BOT_CLARIFIED: "bot_clarified",
              pb.OUTCOME_KIND_HANDED_OFF: "handed_off", pb.OUTCOME_KIND_ASSIGNED: "assigned",
              pb.OUTCOME_KIND_AGENT_REPLIED: "agent_replied", pb.OUTCOME_KIND_CLOSED: "closed",
              pb.OUTCOME_KIND_SURVEY: "survey"}
SCALE_NAMES = {pb.SURVEY_SCALE_UNSPECIFIED: "csat", pb.SURVEY_SCALE_CSAT: "csat", pb.SURVEY_SCALE_NPS: "nps"}
SUGGESTION_USES = {ev.SUGGESTION_USE_USED: "used", ev.SUGGESTION_USE_EDITED: "edited", ev.SUGGESTION_USE_IGNORED: "ignored"}
NEGATIVE_SENTIMENT = -0.25


def now() -> datetime:
    return datetime.now(timezone.utc)


def _time(ts, default: datetime | None = None) -> datetime | None:
    return ts.ToDatetime(tzinfo=timezone.utc) if ts.seconds or ts.nanos else default


class Analytics(analytics_pb2_grpc.AnalyticsServicer):
    def __init__(self, pool, cost: kpis.CostModel, policy: kpis.Policy, staffing_minutes: float = 15.0,
                 alert_window: str = "day"):
        self.pool, self.cost, self.policy, self.staffing_minutes = pool, cost, policy, staffing_minutes
        self.alert_window = alert_window

    async def ListAlerts(self, request, context):
        """The alerts raised on relais.alerts.v1, from what was stored when raising them: nothing is recomputed,
        so a window still filling, never judged, has none."""
        async with self.pool.acquire() as conn:
            raised = await store.alerts(conn, _time(getattr(request, "from")), _time(request.to, now()))
        reply = analytics_pb2.AlertsReply(window=self.alert_window)
        for alert in raised:
            item = reply.alerts.add(alert_id=alert["alert_id"], kind=alert["kind"], detail=alert["detail"],
                                    window_start=alert["window_start"].isoformat())
            item.raised_at.FromDatetime(alert["raised_at"])
        return reply

    async def GetKpis(self, request, context):
        end = _time(request.to, now())
        start = _time(getattr(request, "from"))
        async with self.pool.acquire() as conn:
            inputs = await store.kpi_inputs(conn, start, end, self.policy)
        try:
            rows = store.rows_of(inputs, start, end, window=request.window, dimension=request.dimension,
                                 cost=self.cost, policy=self.policy)
        except ValueError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        started, uses = inputs.started, inputs.uses
        reply = analytics_pb2.KpiReply(currency=self.cost.currency, service_level_seconds=self.policy.service_level_seconds,
                                       recontact_days=self.policy.recontact_days)
        reply.total.CopyFrom(_counts(started))
        for dimension, target in (("intent", reply.by_intent), ("language", reply.by_language)):
            for value in {getattr(c, dimension) or "unknown" for c in started}:
                target[value].CopyFrom(_counts([c for c in started if (getattr(c, dimension) or "unknown") == value]))
        counted = {name: sum(u.use == name for u in uses) for name in ("used", "edited", "ignored")}
        answered = sum(counted.values())
        reply.suggestions.CopyFrom(analytics_pb2.SuggestionCounts(
            **counted, acceptance_rate=(counted["used"] + counted["edited"]) / answered if answered else 0.0))
        for row in rows:
            json_format.ParseDict(row.to_dict(), reply.rows.add())
        return reply

    async def GetIrritants(self, request, context):
        end = _time(request.to, now())
        start = _time(getattr(request, "from"), end - timedelta(days=7))
        async with self.pool.acquire() as conn:
            current = await store.verbatims(conn, start, end)
            previous = await store.verbatims(conn, start - (end - start), start)
        found = await asyncio.to_thread(
            irritants.find_irritants, [v.text for v in current], [v.text for v in previous],
            contacts=[v.conversation_id for v in current], previous_contacts=[v.conversation_id for v in previous],
            max_topics=request.max_topics or 8)
        reply = analytics_pb2.IrritantsReply(
            verbatims=len(current), previous_verbatims=len(previous),
            contacts=len({v.conversation_id for v in current}), previous_contacts=len({v.conversation_id for v in previous}))
        for topic in found:
            reply.irritants.add(label=topic.label, size=topic.size, previous_size=topic.previous_size,
                                examples=topic.examples, terms=topic.terms, languages=topic.languages,
                                **({"trend": topic.trend} if topic.trend is not None else {}))
        return reply

    async def GetStaffing(self, request, context):
        end = _time(request.to, now())
        start = _time(getattr(request, "from"), end - timedelta(days=1))
        # Arrivals are read over staffing intervals (15 minutes, as workforce planning does), so a surge shows.
        minutes = min(self.staffing_minutes, max((end - start).total_seconds() / 60, 1 / 60))
        async with self.pool.acquire() as conn:
            busiest = await store.busiest_interval(conn, start, end, minutes)
            handled = [s for c in await store.contacts(conn, start - timedelta(days=1), end)
                       if (s := kpis.handling_seconds(c)) is not None]
        reply = analytics_pb2.StaffingReply()
        if busiest is None:
            reply.basis = f"no hand-off between {start.isoformat()} and {end.isoformat()}"
            return reply
        slot, arrivals = busiest
        count = arrivals * 60 / minutes  # per hour
        aht = kpis.mean(handled) or self.cost.baseline_aht_seconds
        reply.calls_per_hour, reply.aht_seconds = count, aht
        reply.basis = (f"busiest {minutes:.3g}-minute interval from {slot.isoformat()}: {arrivals} hand-offs, so {count:g}"
                       " an hour; handling time "
                       + (f"mean of {len(handled)} closed contacts" if handled else "from the cost model (none closed)"))
        target_level = request.target_level or 0.8
        target_seconds = request.target_seconds or 20.0
        concurrency = request.concurrency or 1.0
        try:
            plan = staffing.required_agents(count, aht, target_level, target_seconds, concurrency=concurrency)
            reply.recommended.CopyFrom(_plan(plan))
            if request.peak_multiplier:
                reply.peak.CopyFrom(_plan(staffing.required_agents(count * request.peak_multiplier, aht, target_level,
                                                                   target_seconds, concurrency=concurrency)))
        except ValueError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        low = max(1, plan.agents - 5)
        for point in staffing.staffing_curve(count, aht, target_seconds, range(low, plan.agents + 6), concurrency=concurrency):
            reply.curve.append(_plan(point))
        return reply


def _plan(plan: staffing.Staffing) -> analytics_pb2.StaffingPlan:
    asa = plan.asa_seconds if math.isfinite(plan.asa_seconds) else 0.0
    return analytics_pb2.StaffingPlan(agents=plan.agents, service_level=plan.service_level, occupancy=plan.occupancy,
                                      asa_seconds=asa)


def _counts(contacts: list[kpis.Contact]) -> analytics_pb2.KpiCounts:
    return analytics_pb2.KpiCounts(contacts=len(contacts), bot_resolved=sum(c.contained for c in contacts),
                                   handed_off=sum(c.handed_off for c in contacts))


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


def outcome_fact(outcome: pb.Outcome) -> Fact:
    if not outcome.outcome_id or not outcome.conversation_id:
        raise bus.BadInput("outcome without outcome_id or conversation_id")
    if outcome.kind not in KIND_NAMES:
        raise bus.BadInput(f"outcome of unknown kind {outcome.kind}")
    survey = outcome.kind == pb.OUTCOME_KIND_SURVEY
    return Fact("kpi_outcomes", (
        outcome.outcome_id, outcome.conversation_id, outcome.customer_id, KIND_NAMES[outcome.kind], outcome.intent,
        outcome.language, cloudevents.CHANNEL_NAMES.get(outcome.channel, ""),
        pb.HandoffReason.Name(outcome.reason) if outcome.kind == pb.OUTCOME_KIND_HANDED_OFF else "",
        outcome.agent_id, outcome.disposition, outcome.resolved, SCALE_NAMES[outcome.survey_scale] if survey else "",
        outcome.survey_score if survey else None, redact(outcome.survey_comment), _time(outcome.at, now())),
        "analytics outcome", {"relais.conversation_id": outcome.conversation_id})


def agent_fact(event: ev.AgentEvent) -> Fact:
    """State changes (occupancy) and answers to suggestions."""
    if not event.event_id:
        raise bus.BadInput("agent event without event_id")
    at = _time(event.at, now())
    attributes = {"relais.agent_id": event.agent_id}
    if event.HasField("suggestion_feedback"):
        feedback = event.suggestion_feedback
        if feedback.use not in SUGGESTION_USES:
            raise bus.BadInput(f"suggestion feedback with unknown use {feedback.use}")
        return Fact("kpi_suggestions", (event.event_id, feedback.suggestion_id, event.agent_id, feedback.intent,
                                        feedback.language, feedback.source, SUGGESTION_USES[feedback.use], at),
                    "analytics agent event", attributes)
    if event.HasField("state_changed"):
        state = ev.AgentState.Name(event.state_changed.state).removeprefix("AGENT_STATE_").lower()
        return Fact("kpi_agent_states", (event.event_id, event.agent_id, state, at), "analytics agent event", attributes)
    raise bus.BadInput("agent event without a known event")


def verbatim_fact(turn: pb.Turn) -> Fact:
    """A customer's message, redacted, as a verbatim for the irritants view (with whether it asks for a person)."""
    if not turn.turn_id or not turn.conversation_id:
        raise bus.BadInput("turn without turn_id or conversation_id")
    sentiment = turn.classification.sentiment
    negative = sentiment.score <= NEGATIVE_SENTIMENT or sentiment.anger or sentiment.distress
    return Fact("kpi_verbatims", (turn.turn_id, turn.conversation_id, turn.language, turn.classification.intent,
                                  sentiment.score, negative, redact(turn.text), _time(turn.sent_at, now()),
                                  turn.classification.asks_for_human))


def _decode(message_type, record: ConsumerRecord):
    try:
        return message_type.FromString(record.value or b"")
    except pb_message.DecodeError as error:
        raise bus.BadInput(f"bad protobuf: not a {message_type.DESCRIPTOR.full_name} ({error})") from None


async def build(w: worker.Worker) -> worker.Service:
    cost = kpis.CostModel.load(env("RELAIS_COST_MODEL", "") or None)
    policy = kpis.Policy(recontact_days=float(env("RELAIS_RECONTACT_DAYS", "7")),
                         service_level_seconds=float(env("RELAIS_SERVICE_LEVEL_SECONDS", "20")))
    rules = kpis.AlertRules(service_level_target=float(env("RELAIS_SERVICE_LEVEL_TARGET", "0.8")))
    alert_window = env("RELAIS_ALERT_WINDOW", "day")
    settle = float(env("RELAIS_ALERT_SETTLE_SECONDS", "30"))
    dirty: dict[datetime, float] = {}  # alert windows touched since their last check -> when last touched

    def decode(record: ConsumerRecord) -> Fact:
        if record.topic == topics.AGENT_EVENTS:
            return agent_fact(_decode(ev.AgentEvent, record))
        if record.topic == topics.CLASSIFIED_TURNS:
            return verbatim_fact(_decode(pb.Turn, record))
        return outcome_fact(_decode(pb.Outcome, record))

    async def handle_batch(items: list[Item], unit: UnitOfWork) -> None:
        """One insert per table for the batch. Every fact has its own id as primary key: a fact read again is not
        stored twice, so no separate deduplication is needed."""
        by_table: dict[str, list[tuple]] = {}
        for item in items:
            fact = item.value
            by_table.setdefault(fact.table, []).append(fact.values)
            if fact.span_name:
                telemetry.consumed(fact.span_name, item.record, **fact.span_attributes)
        for table, rows in by_table.items():
            inserted = await unit.conn.fetch(INSERTS[table], *map(list, zip(*rows)))
            if table == "kpi_outcomes":
                for row in inserted:
                    dirty[kpis.window_start(row["at"], alert_window)] = time.monotonic()

    async def raise_alerts() -> None:
        """Checks the complete windows whose data has settled (nothing new for `settle` seconds), and the
        windows after them, which are compared with them. A window still filling is not judged."""
        step = kpis.WINDOWS[alert_window]
        for i in range(1, 3):  # after a restart
            dirty.setdefault(kpis.window_start(now() - step * i, alert_window), 0.0)
        while True:
            await asyncio.sleep(float(env("RELAIS_ALERT_SECONDS", "30")))
            settled = sorted(t for t, touched in dirty.items() if time.monotonic() - touched >= settle)
            for t in settled:
                dirty.pop(t)
            try:
                await check_windows(settled)
            except Exception:  # a failed pass is retried with the same windows
                log.exception("alert check failed")
                for t in settled:
                    dirty.setdefault(t, 0.0)

    async def check_windows(settled: list[datetime]) -> None:
        step = kpis.WINDOWS[alert_window]
        for start in sorted({s for t in settled for s in (t, t + step)}):
            if start + step > now():  # the current window is checked once complete; a future one when it has data
                if start <= now():
                    dirty.setdefault(start, 0.0)
                continue
            if start in dirty:  # still filling: judged when it settles
                continue
            async with w.pool.acquire() as conn:
                rows = await store.kpi_rows(conn, start - step, start + step, window=alert_window, cost=cost, policy=policy)
            for alert in kpis.alerts(rows, rules):
                if alert.window_start == start.isoformat():
                    await publish_alert(alert)

    async def publish_alert(alert: kpis.Alert) -> None:
        async def apply(conn) -> list[bus.Record]:
            await conn.execute("INSERT INTO kpi_alerts (alert_id, kind, window_start, detail) VALUES ($1, $2, $3, $4)",
                               alert.alert_id, alert.kind, datetime.fromisoformat(alert.window_start), alert.detail)
            value = cloudevents.structured(ALERT_TYPE, SOURCE, alert.alert_id, alert.kind, {
                "kind": alert.kind, "window": alert_window, "window_start": alert.window_start,
                "detail": alert.detail, "figures": alert.figures})
            log.warning("alert %s: %s", alert.alert_id, alert.detail)
            return [bus.Record(topics.ALERTS, alert.kind.encode(), value, [("content-type", cloudevents.STRUCTURED.encode())])]

        await outbox.process_once(w.pool, w.producer, "analytics-alerts", alert.alert_id, apply)

    servicer = Analytics(w.pool, cost, policy, float(env("RELAIS_STAFFING_INTERVAL_MINUTES", "15")), alert_window)
    return worker.Service(
        decode=decode, handle_batch=handle_batch, topics=(topics.OUTCOMES, topics.AGENT_EVENTS, topics.CLASSIFIED_TURNS),
        grpc_services=(analytics_pb2.DESCRIPTOR.services_by_name["Analytics"].full_name,),
        register=lambda server: analytics_pb2_grpc.add_AnalyticsServicer_to_server(servicer, server),
        background=(raise_alerts,),
    )


def main() -> None:
    serve("analytics", lambda settings, stop: worker.run(settings, stop, build))


if __name__ == "__main__":
    main()
