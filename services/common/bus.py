"""Kafka producer/consumer setup, sending with acknowledgements, dead letters and offset commits: what the one
consume loop every service runs (relais.common.unit_of_work) is made of.

Offsets are committed only after the records were processed and their outputs acknowledged by the broker, so a
stopped or crashed service loses nothing: uncommitted records are delivered again and the handlers' deduplication
makes that harmless. Bad input goes to the dead-letter topic with its reason; broker or database outages are
retried, never dead-lettered.
"""

import asyncio
import logging
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from aiokafka.partitioner import DefaultPartitioner, murmur2
from google.protobuf.message import DecodeError

from relais.common import topics
from relais.common.config import kafka_security  # KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*
from relais.common.db import CONNECTION_LOST

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1_048_576


class BadInput(Exception):
    """The record can never be processed: it goes to the dead-letter topic with this reason."""


def parse(message_type, data: bytes | None, what: str = ""):
    """`data` as a protobuf `message_type`, or BadInput saying what it is not."""
    try:
        return message_type.FromString(data or b"")
    except DecodeError as error:
        raise BadInput(f"bad protobuf: {what}not a {message_type.DESCRIPTOR.full_name} ({error})") from None


# A record the broker will never take (over MAX_MESSAGE_BYTES): these are KafkaErrors, but retrying them would
# stall the partition for ever, so the record that produced it is dead-lettered instead.
TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError)

# Failures that say nothing about the record: wait and try the same record again (TOO_LARGE excepted).
# A deadlock between two consumers of a partition being moved: one is rolled back, and tries again.
TRANSIENT = (asyncio.TimeoutError, KafkaError, asyncpg.DeadlockDetectedError, *CONNECTION_LOST)


@dataclass
class Record:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class KeyPartitioner(DefaultPartitioner):
    """The client's default placement (murmur2 of the key, as Java's), remembered per key: a conversation's key is
    hashed once, not by pure-Python murmur2 on every record of every hop."""

    KEYS = 100_000  # forgotten all at once beyond this (one conversation costs one more hash)

    def __init__(self):
        self.hashes: dict[bytes, int] = {}

    def __call__(self, key, all_partitions, available):
        if key is None:
            return super().__call__(key, all_partitions, available)
        hashed = self.hashes.get(key)
        if hashed is None:
            if len(self.hashes) >= self.KEYS:
                self.hashes.clear()
            hashed = self.hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]


def make_producer(bootstrap: str, **overrides) -> AIOKafkaProducer:
    # Idempotent + acks=all: a retried send is written once, and an ack means durable.
    options = dict(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=0,  # a unit sends its outputs in one burst: they batch without waiting
        max_request_size=MAX_MESSAGE_BYTES,
        partitioner=KeyPartitioner(),
    )
    return AIOKafkaProducer(**(options | kafka_security() | overrides))


def make_consumer(bootstrap: str, group_id: str, *topic_names: str, **overrides) -> AIOKafkaConsumer:
    options = dict(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=500,
        # The client hands out one partition's fetched records before the next partition's: a flood of one key
        # (a whole 1 MiB fetch of it) would hold up the other partitions' records for minutes. 32 KiB per partition
        # and fetch bounds that wait to a few dozen records (a larger record still comes, alone).
        max_partition_fetch_bytes=32 * 1024,
    )
    return AIOKafkaConsumer(*topic_names, **(options | kafka_security() | overrides))


async def publish(producer: AIOKafkaProducer, records: list[Record]) -> None:
    """Sends the records in order, then waits for every acknowledgement. When a record must follow another
    (topics.SENT_AFTER), its topic's records are sent only once the others were acknowledged: one more round trip,
    for the batches that have such a record, instead of one per record."""
    for phase in held_back(records):  # the held-back records (often none) once the others were acknowledged
        futures = [await producer.send(r.topic, r.value, key=r.key, headers=r.headers) for r in phase]
        for future in futures:
            await future


def held_back(records: list[Record]) -> tuple[list[Record], list[Record]]:
    """`records` split in what is sent at once and what waits for its acknowledgement: every record of a topic one of
    whose records follows a record of the same key on a topic of topics.SENT_AFTER (a whole topic, so that each of
    its partitions keeps its order)."""
    seen: dict[str, set[bytes]] = {}
    held: set[str] = set()
    for r in records:
        if r.topic not in held and any(r.key in seen.get(before, ()) for before in topics.SENT_AFTER.get(r.topic, ())):
            held.add(r.topic)
        if r.topic in _FOLLOWED:
            seen.setdefault(r.topic, set()).add(r.key)
    if not held:
        return records, []
    return [r for r in records if r.topic not in held], [r for r in records if r.topic in held]


_FOLLOWED = {topic for before in topics.SENT_AFTER.values() for topic in before}


def record_size(key: bytes | None, value: bytes | None, headers) -> int:
    return len(key or b"") + len(value or b"") + sum(len(k) + len(v or b"") for k, v in headers or [])


def fits(key: bytes | None, value: bytes | None, headers) -> bool:
    """Whether the broker takes a record of this size (with room for the batch's own bytes)."""
    return record_size(key, value, headers) <= MAX_MESSAGE_BYTES - 1024


def key_text(key: bytes | None) -> str:
    """A record's key as a log line shows it (a conversation id, an agent id), cut short."""
    return (key or b"")[:200].decode("utf-8", "replace")


def record_ids(record: ConsumerRecord) -> dict[str, str]:
    """What a log line about `record` names (relais.common.logs): its key (the agent on relais.agent-events.v1, the
    conversation on every other topic) and the CloudEvent id of a binary-mode event (its ce_id header)."""
    ids = {"agent_id" if record.topic == topics.AGENT_EVENTS else "conversation_id": key_text(record.key)}
    event_id = next((v for k, v in record.headers or () if k == "ce_id" and isinstance(v, bytes)), None)
    if event_id:
        ids["event_id"] = event_id[:200].decode("utf-8", "replace")
    return ids


def dead_letter_record(service: str, record: ConsumerRecord, reason: str) -> Record:
    """The dead letter of `record`: a copy with its reason in headers (without the copy when it would be over the
    broker's limit)."""
    headers = list(record.headers or []) + [
        ("dlq.reason", reason.encode("utf-8", "replace")[:2000]),
        ("dlq.service", service.encode()),
        ("dlq.original.topic", record.topic.encode()),
        ("dlq.original.partition", str(record.partition).encode()),
        ("dlq.original.offset", str(record.offset).encode()),
    ]
    log.warning(
        "dead-letter %s[%d]@%d key %r: %s",
        record.topic,
        record.partition,
        record.offset,
        key_text(record.key),
        reason,
        extra=record_ids(record),
    )
    if fits(record.key, record.value, headers):
        return Record(topics.DEAD_LETTER, record.key or b"", record.value or b"", headers)
    size = record_size(None, record.value, record.headers)
    headers = headers[-5:] + [("dlq.value.omitted", f"{size} bytes of value and headers: too large to copy".encode())]
    return Record(topics.DEAD_LETTER, (record.key or b"")[:1024], b"", headers)


async def dead_letter(producer: AIOKafkaProducer, service: str, record: ConsumerRecord, reason: str) -> None:
    await publish(producer, [dead_letter_record(service, record, reason)])


async def commit_offsets(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int], stop: asyncio.Event) -> None:
    if not offsets:
        return
    while True:
        try:
            await consumer.commit(offsets)
            return
        except (CommitFailedError, IllegalStateError) as error:
            # A rebalance took a partition away: its new owner re-reads from the last commit.
            log.warning("commit of %s not done: %r", offsets, error)
            return
        except KafkaError as error:
            if stop.is_set():
                return
            log.warning("commit of %s failed, retrying: %r", offsets, error)
            await asyncio.sleep(0.5)
