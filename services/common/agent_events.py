"""Agent events (relais.agent-events.v1) as both sides name them: routing checks what an agent sends, analytics
stores it under these names."""

from relais.common.pb import agent_events_pb2 as ev

# What the agent did with a suggested reply; UNSPECIFIED is refused.
SUGGESTION_USES = {
    ev.SUGGESTION_USE_USED: "used",
    ev.SUGGESTION_USE_EDITED: "edited",
    ev.SUGGESTION_USE_IGNORED: "ignored",
}
