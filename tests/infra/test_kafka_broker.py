"""The local Kafka launcher: a restarted broker on the same state dir keeps its data."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.kafka.broker import KafkaBroker


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _read_all(bootstrap: str, topic: str, count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        records: list = []
        deadline = asyncio.get_running_loop().time() + 20
        while len(records) < count and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return [r.value for r in records]
    finally:
        await consumer.stop()


def test_restart_keeps_ports_cluster_id_and_data(tmp_path):
    if os.environ.get("RELAIS_TEST_KAFKA_BOOTSTRAP"):
        pytest.skip("uses an external broker; this test needs its own")
    broker = KafkaBroker(tmp_path, heap="256m")
    try:
        bootstrap = broker.start()
        asyncio.run(_produce(bootstrap, "kept", [b"a", b"b", b"c"]))
        broker.stop()
        assert broker.pid is None

        again = KafkaBroker(tmp_path, heap="256m")  # ports and cluster id from meta.json
        assert again.bootstrap == bootstrap
        assert again.cluster_id == json.loads((tmp_path / "meta.json").read_text())["cluster_id"]
        broker = again
        assert broker.start() == bootstrap
        assert asyncio.run(_read_all(bootstrap, "kept", 3)) == [b"a", b"b", b"c"]
    finally:
        broker.stop()
