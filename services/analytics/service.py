"""analytics: counts what happened to each conversation — contacts, bot-resolved, handed off —
per intent and per language, from the outcome events, and how agents answered assist suggestions
(used / edited / ignored, from the agent events); read through the gRPC Analytics API.

Each outcome is applied once (deduplicated by its id), so replaying the log gives the same numbers.
"""

from aiokafka import ConsumerRecord
from google.protobuf import message as pb_message

from relais.common import bus, cloudevents, outbox, telemetry, topics, worker
from relais.common.pb import agent_events_pb2 as ev, analytics_pb2, analytics_pb2_grpc, conversation_pb2 as pb
from relais.common.runtime import serve

COUNTS = (
    "count(*) AS contacts, count(*) FILTER (WHERE bot_answered AND NOT handed_off) AS bot_resolved,"
    " count(*) FILTER (WHERE handed_off) AS handed_off"
)


class Analytics(analytics_pb2_grpc.AnalyticsServicer):
    def __init__(self, pool):
        self.pool = pool

    async def GetKpis(self, request, context):
        reply = analytics_pb2.KpiReply(total=_counts(await self.pool.fetchrow(f"SELECT {COUNTS} FROM kpi_conversations")))
        for dimension, target in (("intent", reply.by_intent), ("language", reply.by_language)):
            rows = await self.pool.fetch(f"SELECT {dimension} AS value, {COUNTS} FROM kpi_conversations GROUP BY {dimension}")
            for r in rows:
                target[r["value"] or "unknown"].CopyFrom(_counts(r))
        uses = dict(await self.pool.fetch("SELECT use, count(*) FROM kpi_suggestions GROUP BY use"))
        used, edited, ignored = (uses.get(name, 0) for name in ("used", "edited", "ignored"))
        answered = used + edited + ignored
        reply.suggestions.CopyFrom(analytics_pb2.SuggestionCounts(
            used=used, edited=edited, ignored=ignored, acceptance_rate=(used + edited) / answered if answered else 0.0))
        return reply


def _counts(row) -> analytics_pb2.KpiCounts:
    return analytics_pb2.KpiCounts(contacts=row["contacts"], bot_resolved=row["bot_resolved"], handed_off=row["handed_off"])


SUGGESTION_USES = {ev.SUGGESTION_USE_USED: "used", ev.SUGGESTION_USE_EDITED: "edited", ev.SUGGESTION_USE_IGNORED: "ignored"}


async def build(w: worker.Worker) -> worker.Service:
    async def handle(record: ConsumerRecord) -> None:
        if record.topic == topics.AGENT_EVENTS:
            await handle_agent_event(record)
            return
        try:
            outcome = pb.Outcome.FromString(record.value or b"")
        except pb_message.DecodeError as error:
            raise bus.BadInput(f"bad protobuf: not a relais.v1.Outcome ({error})") from None
        if not outcome.outcome_id or not outcome.conversation_id:
            raise bus.BadInput("outcome without outcome_id or conversation_id")

        async def apply(conn) -> list[bus.Record]:
            with telemetry.consume_span("analytics outcome", record, **{"relais.conversation_id": outcome.conversation_id}):
                await conn.execute(
                    "INSERT INTO kpi_conversations AS k (conversation_id, intent, language, channel, bot_answered, handed_off)"
                    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (conversation_id) DO UPDATE SET"
                    " intent = CASE WHEN k.intent = '' THEN EXCLUDED.intent ELSE k.intent END,"
                    " language = CASE WHEN k.language = '' THEN EXCLUDED.language ELSE k.language END,"
                    " bot_answered = k.bot_answered OR EXCLUDED.bot_answered,"
                    " handed_off = k.handed_off OR EXCLUDED.handed_off",
                    outcome.conversation_id, outcome.intent, outcome.language,
                    cloudevents.CHANNEL_NAMES.get(outcome.channel, ""),
                    outcome.kind == pb.OUTCOME_KIND_BOT_ANSWERED, outcome.kind == pb.OUTCOME_KIND_HANDED_OFF,
                )
            return []

        await outbox.process_once(w.pool, w.producer, "analytics", outcome.outcome_id, apply)

    async def handle_agent_event(record: ConsumerRecord) -> None:
        """An agent's answer to a suggestion is counted once; state changes are not counted yet."""
        try:
            event = ev.AgentEvent.FromString(record.value or b"")
        except pb_message.DecodeError as error:
            raise bus.BadInput(f"bad protobuf: not a relais.v1.AgentEvent ({error})") from None
        if not event.event_id:
            raise bus.BadInput("agent event without event_id")
        if not event.HasField("suggestion_feedback"):
            return
        feedback = event.suggestion_feedback
        if feedback.use not in SUGGESTION_USES:
            raise bus.BadInput(f"suggestion feedback with unknown use {feedback.use}")

        async def apply(conn) -> list[bus.Record]:
            with telemetry.consume_span("analytics suggestion feedback", record, **{"relais.agent_id": event.agent_id}):
                await conn.execute(
                    "INSERT INTO kpi_suggestions (feedback_id, suggestion_id, agent_id, intent, language, source, use)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (feedback_id) DO NOTHING",
                    event.event_id, feedback.suggestion_id, event.agent_id, feedback.intent, feedback.language,
                    feedback.source, SUGGESTION_USES[feedback.use])
            return []

        await outbox.process_once(w.pool, w.producer, "analytics", f"agent-event/{event.event_id}", apply)

    servicer = Analytics(w.pool)
    return worker.Service(
        handle=handle, topics=(topics.OUTCOMES, topics.AGENT_EVENTS),
        grpc_services=(analytics_pb2.DESCRIPTOR.services_by_name["Analytics"].full_name,),
        register=lambda server: analytics_pb2_grpc.add_AnalyticsServicer_to_server(servicer, server),
    )


def main() -> None:
    serve("analytics", lambda settings, stop: worker.run(settings, stop, build))


if __name__ == "__main__":
    main()
