"""On the real stack: every reply on relais.replies.v1 carries its conversation's W3C traceparent (the trace intake
started, as on the conversation's relais.turns.v1 record), from the bot and from routing; and a service started
with RELAIS_LOG_FORMAT=json writes one JSON object per line, naming the conversation a line is about."""

import asyncio
import json
import random
import string
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2

from infra.ports import free_port
from relais.common import bus, cloudevents, topics
from relais.common.config import kafka_security
from relais.common.pb import agent_desk_pb2 as desk
from relais.demo import send_message

TRACEPARENT = r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}"


class Records:
    """The records of some topics from the moment `start` returns, with their headers."""

    def __init__(self, bootstrap: str, *topic_names: str):
        self.topic_names = topic_names
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **kafka_security())
        self.seen: list = []

    async def __aenter__(self) -> "Records":
        await self.consumer.start()
        await self.consumer._client.force_metadata_update()
        tps = [
            TopicPartition(topic, p) for topic in self.topic_names for p in self.consumer.partitions_for_topic(topic)
        ]
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)
        for tp in tps:
            await self.consumer.position(tp)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.consumer.stop()

    async def first(self, topic: str, key: str, matches=lambda value: True, timeout: float = 30):
        """The first record of `topic` with this key whose value `matches`."""
        async with asyncio.timeout(timeout):
            while True:
                found = [r for r in self.seen if r.topic == topic and r.key == key.encode() and matches(r.value)]
                if found:
                    return found[0]
                for records in (await self.consumer.getmany(timeout_ms=200)).values():
                    self.seen += records

    async def reply(self, conversation_id: str, event_type: str):
        return await self.first(topics.REPLIES, conversation_id, lambda value: json.loads(value)["type"] == event_type)


def trace_id(record) -> str:
    """The trace id of the record's traceparent header (AssertionError when it has none, or a malformed one)."""
    values = [v.decode() for k, v in record.headers if k == "traceparent"]
    assert len(values) == 1, f"{record.topic} {record.key!r}: traceparent headers {values}"
    version, trace, span, flags = values[0].split("-")
    assert (len(version), len(trace), len(span), len(flags)) == (2, 32, 16, 2) and int(trace, 16), values[0]
    return trace


async def test_bot_and_routing_replies_carry_the_conversation_trace(stack, producer, agent_session):
    answered = f"logs-bot-{uuid.uuid4().hex[:8]}"
    waiting = f"logs-wait-{uuid.uuid4().hex[:8]}"
    # A private-use language (ISO 639 qaa-qtz): nobody else's advisor speaks it, so the customer is told to wait.
    language = "q" + random.choice("abcdefghijklmnopqrst") + random.choice(string.ascii_lowercase)
    async with Records(stack.bootstrap, topics.TURNS, topics.REPLIES) as seen:
        await send_message(producer, answered, {"id": "cust-logs-1"}, "Bonjour, quels sont vos horaires d'ouverture ?")
        await send_message(producer, waiting, {"id": "cust-logs-2", "language": language}, "I want to talk to someone")

        turn = await seen.first(topics.TURNS, answered)
        assert trace_id(await seen.reply(answered, cloudevents.REPLY_BOT)) == trace_id(turn)

        conversation = trace_id(await seen.first(topics.TURNS, waiting))
        assert trace_id(await seen.reply(waiting, cloudevents.REPLY_HANDOFF)) == conversation
        assert trace_id(await seen.reply(waiting, cloudevents.REPLY_QUEUE)) == conversation  # routing's place message
        async with agent_session(f"agent-{waiting}", languages=[language]) as agent:
            offer = await agent.offer_for(waiting)
            await agent.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=agent.auth)
            await agent.stub.Reply(desk.ReplyRequest(task_id=offer.task_id, text="Hello"), metadata=agent.auth)
            assert trace_id(await seen.reply(waiting, cloudevents.REPLY_AGENT)) == conversation
            await agent.stub.Close(
                desk.CloseRequest(task_id=offer.task_id, disposition="resolved", resolved=True), metadata=agent.auth
            )
            assert trace_id(await seen.reply(waiting, cloudevents.REPLY_SURVEY)) == conversation


def key_per_partition(prefix: str, partitions: int) -> list[str]:
    """One key landing on each partition (the producer's murmur2 placement)."""
    keys: dict[int, str] = {}
    while len(keys) < partitions:
        key = f"{prefix}-{uuid.uuid4().hex[:8]}"
        keys.setdefault((murmur2(key.encode()) & 0x7FFFFFFF) % partitions, key)
    return list(keys.values())


async def test_a_service_started_with_json_logs_writes_json_lines_naming_the_conversation(stack, producer):
    """A second bot process with RELAIS_LOG_FORMAT=json shares the bot's partitions; unreadable turns on every
    partition are dead-lettered, some by it: its lines about them name their conversation."""
    name = "bot-json"
    stack.ports[name] = free_port()
    stack.extra_env["RELAIS_LOG_FORMAT"] = "json"
    try:
        stack.start_service(name, "bot")
    finally:
        del stack.extra_env["RELAIS_LOG_FORMAT"]
    log = stack.state_dir / "logs" / f"{name}.log"
    try:
        await asyncio.to_thread(stack.wait_healthy, [name])
        partitions = len(producer._metadata.partitions_for_topic(topics.CLASSIFIED_TURNS) or ()) or 6
        sent: set[str] = set()
        async with asyncio.timeout(60):  # until the group gave it partitions and it met one of these turns
            while True:
                keys = key_per_partition("logs-json", partitions)
                sent.update(keys)
                await bus.publish(producer, [bus.Record(topics.CLASSIFIED_TURNS, k.encode(), b"") for k in keys])
                lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
                dead = [line for line in lines if line.get("conversation_id") in sent]
                if dead:
                    break
                await asyncio.sleep(1)
    finally:
        await asyncio.to_thread(stack.stop_service, name)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]  # each line one JSON object
    assert {line["service"] for line in lines} == {"bot"}
    assert any(line["message"].startswith("bot serving on") for line in lines)
    line = dead[0]
    assert line["level"] == "WARNING" and line["logger"] == "relais.common.bus"
    assert line["message"].startswith(f"dead-letter {topics.CLASSIFIED_TURNS}[")
    assert line["message"].endswith("turn without turn_id or conversation_id")
    assert line["time"].endswith("Z")
