"""Kafka topics: the public contract and the internal hops between services."""

from dataclasses import dataclass, field

# Public: what enterprise systems produce to and consume from.
CONTACT_EVENTS = "relais.contact-events.v1"
REPLIES = "relais.replies.v1"
DEAD_LETTER = "relais.dead-letter.v1"
ALERTS = "relais.alerts.v1"  # analytics -> operations (structured CloudEvents, relais.alert.v1)
# Internal hops, protobuf values, keyed by conversation.
TURNS = "relais.turns.v1"  # intake -> classifier (relais.v1.Turn)
CLASSIFIED_TURNS = "relais.classified-turns.v1"  # classifier -> bot (relais.v1.Turn)
HANDOFFS = "relais.handoffs.v1"  # bot -> routing (relais.v1.HandoffEvent)
OUTCOMES = "relais.outcomes.v1"  # bot, routing -> analytics (relais.v1.Outcome)
AGENT_EVENTS = "relais.agent-events.v1"  # routing -> analytics (relais.v1.AgentEvent), keyed by agent

# Records on these topics are sent once the same key's earlier records on the listed topics were acknowledged
# (relais.common.bus.publish). Two topics, or two producers, have no order between them: without this, routing can
# take a hand-off and tell the customer their place before the broker has the bot's hand-off notice (a request
# retried for one partition, or a bot stopped between the two acknowledgements, sends the notice after it).
SENT_AFTER = {HANDOFFS: (REPLIES,)}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 6
    config: dict[str, str] = field(default_factory=dict)


# Six partitions: enough for a few processes per service to share the load; order is per key.
ALL = [
    TopicSpec(CONTACT_EVENTS),
    TopicSpec(REPLIES),
    TopicSpec(DEAD_LETTER, partitions=1, config={"retention.ms": str(30 * 24 * 3600 * 1000)}),
    TopicSpec(ALERTS, partitions=1),
    TopicSpec(TURNS),
    TopicSpec(CLASSIFIED_TURNS),
    TopicSpec(HANDOFFS),
    TopicSpec(OUTCOMES),
    TopicSpec(AGENT_EVENTS),
]


async def ensure_topics(bootstrap: str, specs: list[TopicSpec] = ALL) -> list[str]:
    """Creates the missing topics; returns the names created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from relais.common.config import kafka_security

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_security())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            await admin.create_topics([NewTopic(s.name, s.partitions, 1, topic_configs=s.config) for s in missing])
        return [s.name for s in missing]
    finally:
        await admin.close()
