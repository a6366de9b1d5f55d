"""What routing records besides its tables' rows: the details of a task's steps (task_events), the outcome and
agent-event records it publishes, and the spans those records are traced in."""

import uuid

from opentelemetry.trace import Link, get_current_span

from relais.common import bus, cloudevents, telemetry, topics
from relais.common.pb import agent_events_pb2 as ev, conversation_pb2 as pb
from relais.routing import rules

SOURCE = "urn:relais:routing"
KAFKA = "routing"  # outbox consumer name of the hand-offs and customer messages read from Kafka (applied once per key)
DESK = "routing-desk"  # outbox consumer name of changes made by agents and by the ticker (always applied)
STATE_ENUM = {
    "offline": ev.AGENT_STATE_OFFLINE,
    "available": ev.AGENT_STATE_AVAILABLE,
    "busy": ev.AGENT_STATE_BUSY,
    "wrap_up": ev.AGENT_STATE_WRAP_UP,
    "break": ev.AGENT_STATE_BREAK,
}
STATE_NAME = {v: k for k, v in STATE_ENUM.items()}


def needs(required) -> str:
    return ", ".join(f"{skill} ≥ {level}" for skill, level in sorted(required.items())) or "no skill"


def queued_detail(need: rules.Requirement) -> str:
    return f"needs {needs(need.required)} in {need.language}, priority {need.priority}"


def overflow_detail(stage: int, routing_rules: rules.RoutingRules) -> str:
    step = routing_rules.overflow[stage - 1]
    return (
        f"stage {stage}: "
        + (f"levels relaxed by {step.relax_levels}" if step.relax_levels else "")
        + (f"queue {step.queue}" if step.queue else "")
    )


def widened_detail(task: rules.Task, stage: int, routing_rules: rules.RoutingRules) -> str:
    required, queue = rules.needs_at_stage(task.required, task.stage, routing_rules)
    before = f"queue {queue}" if queue else needs(required)
    return f"{overflow_detail(stage, routing_rules)} at once: no advisor signed in for {before} in {task.language}"


def conversation_span(name: str, traceparent: str, agent_id: str):
    """A span in the conversation's trace, linked to the agent's own call when there is one."""
    caller = get_current_span().get_span_context()
    links = [Link(caller)] if caller.is_valid else []
    parent = telemetry.context_from_traceparent(traceparent)
    return telemetry.tracer().start_as_current_span(
        name, context=parent, links=links, attributes={"relais.agent_id": agent_id}
    )


def state_event(agent_id: str, previous: str | None, state: str, cause: str) -> bus.Record:
    event = ev.AgentEvent(
        event_id=str(uuid.uuid4()),
        agent_id=agent_id,
        state_changed=ev.AgentStateChanged(
            previous=STATE_ENUM.get(previous or "", ev.AGENT_STATE_UNSPECIFIED), state=STATE_ENUM[state], cause=cause
        ),
    )
    event.at.GetCurrentTime()
    return bus.Record(topics.AGENT_EVENTS, agent_id.encode(), event.SerializeToString(), telemetry.inject_headers())


def outcome(outcome_id: str, ctx: pb.ConversationContext, kind: pb.OutcomeKind, agent_id: str, **extra) -> bus.Record:
    record = pb.Outcome(
        outcome_id=outcome_id,
        conversation_id=ctx.conversation_id,
        kind=kind,
        intent=ctx.intent,
        language=ctx.language,
        channel=ctx.channel,
        agent_id=agent_id,
        customer_id=ctx.customer.id,
        **extra,
    )
    record.at.GetCurrentTime()
    return bus.Record(
        topics.OUTCOMES, ctx.conversation_id.encode(), record.SerializeToString(), telemetry.inject_headers()
    )


def queue_reply(
    reply_id: str, conversation_id: str, text: str, language: str, traceparent: str | None = None, **data
) -> bus.Record:
    """A message to a waiting customer (relais.reply.queue.v1) in the conversation's trace: the stored
    `traceparent`'s when there is one, else the current span's."""
    reply = cloudevents.reply(cloudevents.REPLY_QUEUE, SOURCE, reply_id, conversation_id, text, language, **data)
    return telemetry.traced(reply, ctx=telemetry.context_from_traceparent(traceparent))
