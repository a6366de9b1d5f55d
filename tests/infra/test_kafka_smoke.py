"""Smoke tests of the clients we use (aiokafka 0.14, faust-streaming 0.15) against the real broker.

aiokafka's own CI stops at broker 2.8 and Kafka 4.0 removed old protocol versions,
so each feature we rely on is exercised here once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import ConsumerRecord

TIMEOUT = 30


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def create_topic(bootstrap: str, name: str, partitions: int = 3, configs=None) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
        errors = [e for e in response.topic_errors if e[1] != 0]
        assert not errors, errors
    finally:
        await admin.close()


async def consume(consumer: AIOKafkaConsumer, count: int, timeout: float = TIMEOUT) -> list:
    """Read until count records arrived (or timeout); return them."""
    records: list[ConsumerRecord] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(records) < count and asyncio.get_running_loop().time() < deadline:
        batches = await consumer.getmany(timeout_ms=200)
        for batch in batches.values():
            records.extend(batch)
    return records


async def drain(consumers: list[AIOKafkaConsumer], count: int, timeout: float = TIMEOUT):
    """Poll several consumers together until count records arrived in total."""
    got: list[list] = [[] for _ in consumers]
    deadline = asyncio.get_running_loop().time() + timeout
    while sum(map(len, got)) < count and asyncio.get_running_loop().time() < deadline:
        results = await asyncio.gather(*(c.getmany(timeout_ms=200) for c in consumers))
        for records, batches in zip(got, results):
            for batch in batches.values():
                records.extend(batch)
    return got


async def test_keyed_messages_keep_order_per_key(kafka_bootstrap):
    topic = unique("smoke-order")
    await create_topic(kafka_bootstrap, topic)
    keys, per_key = [f"call-{i}" for i in range(6)], 25

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        sends = [
            await producer.send(topic, key=k.encode(), value=str(seq).encode()) for seq in range(per_key) for k in keys
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        records = await consume(consumer, len(keys) * per_key)
    finally:
        await consumer.stop()

    seen, partitions = defaultdict(list), defaultdict(set)
    for r in records:
        seen[r.key.decode()].append(int(r.value))
        partitions[r.key.decode()].add(r.partition)
    assert len(records) == len(keys) * per_key
    assert all(seen[k] == list(range(per_key)) for k in keys), dict(seen)
    assert all(len(p) == 1 for p in partitions.values())  # a key sticks to one partition
    assert len({p for ps in partitions.values() for p in ps}) > 1  # and keys do spread


async def test_consumer_group_splits_partitions_and_honours_commits(kafka_bootstrap):
    topic, group = unique("smoke-group"), unique("group")
    await create_topic(kafka_bootstrap, topic)

    def member() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            # Members learn of a rebalance by heartbeat; the 3 s default slows the test.
            heartbeat_interval_ms=300,
        )

    first, second = member(), member()
    await first.start()
    await second.start()
    try:
        # Wait for the rebalance that gives each member part of the 3 partitions.
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while True:
            await asyncio.gather(first.getmany(timeout_ms=100), second.getmany(timeout_ms=100))
            a, b = first.assignment(), second.assignment()
            if a and b and len(a | b) == 3 and not a & b:
                break
            assert asyncio.get_running_loop().time() < deadline, (a, b)

        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for i in range(60):
                await producer.send(topic, key=f"k{i}".encode(), value=str(i).encode())
            await producer.flush()

            got_a, got_b = await drain([first, second], 60)
            extra_a, extra_b = await drain([first, second], 1, timeout=1)  # duplicates?
            got_a, got_b = got_a + extra_a, got_b + extra_b
            values = [int(r.value) for r in got_a + got_b]
            assert sorted(values) == list(range(60))  # each exactly once
            assert got_a and got_b
            assert {r.partition for r in got_a}.isdisjoint({r.partition for r in got_b})
            await first.commit()
            await second.commit()
        finally:
            await producer.stop()
    finally:
        await first.stop()
        await second.stop()

    # A new member of the group resumes after the committed offsets.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(60, 70):
            await producer.send(topic, key=f"k{i}".encode(), value=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()
    late = member()
    await late.start()
    try:
        records = await consume(late, 10)
        records += await consume(late, 100, timeout=1)  # nothing more should come
    finally:
        await late.stop()
    assert sorted(int(r.value) for r in records) == list(range(60, 70))


async def test_transactions_hide_aborted_records(kafka_bootstrap):
    topic, group = unique("smoke-txn"), unique("txn-group")
    await create_topic(kafka_bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=unique("txn"))
    await producer.start()
    try:
        async with producer.transaction():
            for i in range(5):
                await producer.send(topic, key=b"k", value=f"committed-{i}".encode())
        await producer.begin_transaction()
        for i in range(5):
            await producer.send(topic, key=b"k", value=f"aborted-{i}".encode())
        await producer.abort_transaction()
        # Consume-transform-produce: offsets committed as part of the transaction.
        async with producer.transaction():
            await producer.send(topic, key=b"k", value=b"end")
            await producer.send_offsets_to_transaction({TopicPartition(topic, 0): 3}, group)
    finally:
        await producer.stop()

    async def read(isolation: str) -> list[str]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level=isolation,
        )
        await consumer.start()
        try:
            values: list[str] = []
            deadline = asyncio.get_running_loop().time() + TIMEOUT
            while "end" not in values and asyncio.get_running_loop().time() < deadline:
                values += [r.value.decode() for r in await consume(consumer, 1, 0.5)]
            return values
        finally:
            await consumer.stop()

    assert await read("read_committed") == [f"committed-{i}" for i in range(5)] + ["end"]
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group)
    await consumer.start()
    try:
        assert await consumer.committed(TopicPartition(topic, 0)) == 3
    finally:
        await consumer.stop()
    # Sanity check that the aborted records really were written.
    assert "aborted-0" in await read("read_uncommitted")


async def test_compacted_topic(kafka_bootstrap):
    topic = unique("smoke-compact")
    await create_topic(kafka_bootstrap, topic, 1, {"cleanup.policy": "compact"})
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"cleanup.policy": None})]
        )
        configs = {entry[0]: entry[1] for entry in response.resources[0][4]}
    finally:
        await admin.close()
    assert configs["cleanup.policy"] == "compact"

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(topic, key=b"agent-1", value=f"v{i}".encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        records = await consume(consumer, 3)
    finally:
        await consumer.stop()
    assert [r.value for r in records] == [b"v0", b"v1", b"v2"]


async def test_faust_agent_counts_into_table(kafka_bootstrap):
    """A faust agent counts events into a Table whose changelog is a compacted topic."""
    import faust

    app_id, events = unique("smoke-faust"), 30
    # Faust declares only its internal topics (changelogs, assignor); source
    # topics must exist already because the broker does not auto-create topics.
    await create_topic(kafka_bootstrap, f"{app_id}-events")
    app = faust.App(
        app_id,
        broker=f"kafka://{kafka_bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_partitions=3,
        topic_replication_factor=1,
    )
    topic = app.topic(f"{app_id}-events", key_type=str, value_type=str)
    counts = app.Table("counts", default=int)
    seen: list[str] = []

    @app.agent(topic)
    async def count(stream):
        async for key, value in stream.items():
            counts[key] += 1
            seen.append(value)

    await asyncio.wait_for(app.start(), TIMEOUT)
    try:
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while len({tp.topic for tp in app.consumer.assignment()} & {topic.get_topic_name()}) == 0:
            assert asyncio.get_running_loop().time() < deadline, "faust got no partitions"
            await asyncio.sleep(0.1)
        for i in range(events):
            await topic.send(key=f"call-{i % 3}", value=str(i))
        while len(seen) < events and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        assert sorted(seen, key=int) == [str(i) for i in range(events)]
        assert dict(counts.items()) == {"call-0": 10, "call-1": 10, "call-2": 10}
    finally:
        await asyncio.wait_for(app.stop(), TIMEOUT)

    # The table's state really went through Kafka: a compacted changelog topic
    # whose latest value per key is the final count.
    changelog = f"{app_id}-counts-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, changelog, {"cleanup.policy": None})]
        )
        policy = {entry[0]: entry[1] for entry in response.resources[0][4]}["cleanup.policy"]
    finally:
        await admin.close()
    assert policy == "compact"
    consumer = AIOKafkaConsumer(
        changelog,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        records = await consume(consumer, events)
    finally:
        await consumer.stop()
    latest = {r.key: r.value for r in records}
    assert latest == {b'"call-0"': b"10", b'"call-1"': b"10", b'"call-2"': b"10"}
