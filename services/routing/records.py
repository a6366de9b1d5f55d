"""What routing records besides its tables' rows: a task's steps, and the outcome and agent-event records
it publishes. Shared by the decisions (service.py) and the agents' API (desk_api.py)."""

import uuid

from relais.common import bus, telemetry, topics
from relais.common.pb import agent_events_pb2 as ev, conversation_pb2 as pb

SOURCE = "urn:relais:routing"
DESK = "routing-desk"  # outbox consumer name of changes made by agents and by the ticker
STATE_ENUM = {"offline": ev.AGENT_STATE_OFFLINE, "available": ev.AGENT_STATE_AVAILABLE, "busy": ev.AGENT_STATE_BUSY,
              "wrap_up": ev.AGENT_STATE_WRAP_UP, "break": ev.AGENT_STATE_BREAK}
STATE_NAME = {v: k for k, v in STATE_ENUM.items()}


async def task_event(conn, task_id: str, kind: str, agent_id: str = "", detail: str = "") -> None:
    """One step of a task in task_events: queued, offered, rejected, overflow, closed, ..."""
    await conn.execute("INSERT INTO task_events (task_id, kind, agent_id, detail) VALUES ($1, $2, $3, $4)",
                       task_id, kind, agent_id or "", detail)


def state_event(agent_id: str, previous: str, state: str, cause: str) -> bus.Record:
    event = ev.AgentEvent(event_id=str(uuid.uuid4()), agent_id=agent_id, state_changed=ev.AgentStateChanged(
        previous=STATE_ENUM.get(previous, 0), state=STATE_ENUM[state], cause=cause))
    event.at.GetCurrentTime()
    return bus.Record(topics.AGENT_EVENTS, agent_id.encode(), event.SerializeToString(), telemetry.inject_headers())


def outcome(outcome_id: str, ctx: pb.ConversationContext, kind: int, agent_id: str, **extra) -> bus.Record:
    record = pb.Outcome(outcome_id=outcome_id, conversation_id=ctx.conversation_id, kind=kind, intent=ctx.intent,
                        language=ctx.language, channel=ctx.channel, agent_id=agent_id,
                        customer_id=ctx.customer.id, **extra)
    record.at.GetCurrentTime()
    return bus.Record(topics.OUTCOMES, ctx.conversation_id.encode(), record.SerializeToString(), telemetry.inject_headers())
