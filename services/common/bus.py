"""Kafka producer/consumer setup and the one consume loop every service runs.

The loop commits a partition's offset only after its records were processed (and their outputs
acknowledged by the broker), so a stopped or crashed service loses nothing: uncommitted records
are delivered again and the handlers' deduplication makes that harmless. Bad input goes to the
dead-letter topic with its reason; broker or database outages are retried, never dead-lettered.
"""

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import (CommitFailedError, IllegalStateError, KafkaError, MessageSizeTooLargeError,
                             RecordListTooLargeError, RecordTooLargeError)

from relais.common import topics
from relais.common.db import CONNECTION_LOST
from relais.common.config import kafka_security  # KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1_048_576


class BadInput(Exception):
    """The record can never be processed: it goes to the dead-letter topic with this reason."""


# A record the broker will never take (over MAX_MESSAGE_BYTES): these are KafkaErrors, but retrying them would
# stall the partition for ever, so the record that produced it is dead-lettered instead.
TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError)

# Failures that say nothing about the record: wait and try the same record again (TOO_LARGE excepted).
TRANSIENT = (asyncio.TimeoutError, KafkaError, *CONNECTION_LOST)


@dataclass
class Record:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def make_producer(bootstrap: str, **overrides) -> AIOKafkaProducer:
    # Idempotent + acks=all: a retried send is written once, and an ack means durable.
    options = dict(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        max_request_size=MAX_MESSAGE_BYTES,
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
    """Sends the records and returns once the broker acknowledged every one — or, inside a batch of the
    consume loop, hands them to the batch, which sends them after its transaction committed and has them
    acknowledged before the batch's offsets are committed."""
    batch = _current_batch.get()
    if batch is not None:
        for r in records:  # refused now, so that the record that produced it is the one dead-lettered
            size = _size(r.key, r.value, r.headers)
            if size > MAX_MESSAGE_BYTES - 1024:
                raise MessageSizeTooLargeError(f"a {size}-byte record for {r.topic}")
        batch.records.extend(records)
        return
    await _send_all(producer, records)


async def _send_all(producer: AIOKafkaProducer, records: list[Record]) -> None:
    """Sends the records in order, then waits for every acknowledgement."""
    futures = [await producer.send(r.topic, r.value, key=r.key, headers=r.headers) for r in records]
    for future in futures:
        await future


def _size(key: bytes | None, value: bytes | None, headers) -> int:
    return len(key or b"") + len(value or b"") + sum(len(k) + len(v or b"") for k, v in headers or [])


async def dead_letter(producer: AIOKafkaProducer, service: str, record: ConsumerRecord, reason: str) -> None:
    headers = list(record.headers or []) + [
        ("dlq.reason", reason.encode("utf-8", "replace")[:2000]),
        ("dlq.service", service.encode()),
        ("dlq.original.topic", record.topic.encode()),
        ("dlq.original.partition", str(record.partition).encode()),
        ("dlq.original.offset", str(record.offset).encode()),
    ]
    log.warning("dead-letter %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason)
    try:
        await publish(producer, [Record(topics.DEAD_LETTER, record.key or b"", record.value or b"", headers)])
    except TOO_LARGE:  # the original plus these headers is over the limit: the reason goes without the copy
        size = _size(None, record.value, record.headers)
        headers = headers[-5:] + [("dlq.value.omitted", f"{size} bytes of value and headers: too large to copy".encode())]
        await publish(producer, [Record(topics.DEAD_LETTER, (record.key or b"")[:1024], b"", headers)])


Handler = Callable[[ConsumerRecord], Awaitable[None]]


@dataclass
class Batch:
    """Records of a poll handled together: one database transaction, then their outputs sent in order and
    acknowledged once, then the offsets committed once."""
    conn: "asyncpg.Connection | None" = None
    transaction: "asyncpg.transaction.Transaction | None" = None
    records: list[Record] = field(default_factory=list)
    marks: list[tuple[str, str]] = field(default_factory=list)  # (outbox consumer, event key) to mark published


_current_batch: contextvars.ContextVar[Batch | None] = contextvars.ContextVar("relais_batch", default=None)


def current_batch() -> Batch | None:
    return _current_batch.get()


async def consume(
    service: str,
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    handle: Handler,
    stop: asyncio.Event,
    retry_seconds: float = 0.5,
    pool: "asyncpg.Pool | None" = None,
    batched: bool = False,
    batch_ms: float = 20.0,
) -> None:
    """Processes records in order per partition until `stop` is set; commits after processing.

    `batched`: a poll's records (every partition's, each partition's in order) are handled in batches of at
    most `batch_ms` (see Batch), which saves each record its own commit, acknowledgement wait and offset
    commit. A batch that fails on the database or the broker is rolled back and read again; one with a bad
    record is rolled back and its records handled one by one, so that only the bad one is dead-lettered.
    """
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=200, max_records=500)
        if batched:
            await _process_batched(service, consumer, producer, handle, stop, batches, retry_seconds, pool,
                                   batch_ms / 1000)
            continue
        for tp, records in batches.items():
            done = await _process_partition(service, producer, handle, stop, records, retry_seconds)
            if done is not None:
                await _commit(consumer, tp, done.offset + 1, stop)
            if stop.is_set():
                return  # what was not committed is delivered again after restart


async def _process_batched(service, consumer, producer, handle, stop, batches, retry_seconds, pool, seconds):
    """Optimistic batches: when a record fails (bad input, a defect), the batch is rolled back and its records
    up to the failing one are handled one by one, the old way, which dead-letters that record alone."""
    items = [(tp, record) for tp, records in batches.items() for record in records]
    start = 0
    while start < len(items) and not stop.is_set():
        batch = Batch()
        token = _current_batch.set(batch)
        handled, failed = 0, False
        try:
            if pool is not None:
                batch.conn = await pool.acquire()
            transaction = batch.transaction = batch.conn.transaction() if batch.conn is not None else None
            if transaction is not None:
                await transaction.start()
            began = time.monotonic()
            for _, record in items[start:]:
                try:
                    await handle(record)
                except TOO_LARGE:  # a KafkaError, yet about the record: sorted out like bad input below
                    failed = True
                except TRANSIENT:
                    raise
                except Exception:  # BadInput or a defect: sorted out one record at a time below
                    failed = True
                handled += 1
                if failed or time.monotonic() - began > seconds or stop.is_set():
                    break
            if failed:
                await _rollback(batch)
            elif transaction is not None:
                await transaction.commit()
        except TRANSIENT as error:
            log.warning("transient failure in a batch of %d records, retrying it: %r", len(items) - start, error)
            await _rollback(batch)
            await asyncio.sleep(retry_seconds)
            continue
        finally:
            _current_batch.reset(token)
            if batch.conn is not None:
                await _release(pool, batch.conn)
                batch.conn = None
        done = items[start:start + handled]
        if failed:
            by_partition: dict[TopicPartition, list[ConsumerRecord]] = {}
            for tp, record in done:
                by_partition.setdefault(tp, []).append(record)
            for tp, records in by_partition.items():
                last = await _process_partition(service, producer, handle, stop, records, retry_seconds)
                if last is not None:
                    await _commit(consumer, tp, last.offset + 1, stop)
                if last is not records[-1]:
                    return  # stopping: the rest is delivered again
        else:
            while not await _flush(producer, pool, batch):
                if stop.is_set():
                    return  # not committed: delivered again, deduplicated
                await asyncio.sleep(retry_seconds)
            await _commit_all(consumer, {tp: record.offset + 1 for tp, record in done}, stop)
        start += handled


async def _release(pool, conn) -> None:
    # When the server went away mid-query, resetting the connection for the pool fails; asyncpg has then closed it
    # and the pool opens another. That must not stop the service.
    try:
        await pool.release(conn)
    except Exception as error:
        log.warning("a database connection was not released cleanly (closed instead): %r", error)


async def _rollback(batch: Batch) -> None:
    try:
        if batch.transaction is not None:
            await batch.transaction.rollback()
    except Exception:  # the connection is gone with its transaction; if asyncpg already took it back (the server
        pass           # went away), even the rollback raises InterfaceError, which must not stop the service


async def _flush(producer: AIOKafkaProducer, pool, batch: Batch) -> bool:
    """Sends the batch's records in order, waits for every acknowledgement, marks their outbox rows."""
    try:
        await _send_all(producer, batch.records)
    except TRANSIENT as error:
        log.warning("publishing a batch of %d records failed, retrying: %r", len(batch.records), error)
        return False
    if batch.marks and pool is not None:
        try:
            async with pool.acquire() as conn, conn.transaction():
                # Losing this mark only re-sends the same records on a redelivery: no flush needed.
                await conn.execute("SET LOCAL synchronous_commit = off")
                await conn.execute(
                    "UPDATE outbox SET published = true FROM unnest($1::text[], $2::text[]) AS m(consumer, event_key)"
                    " WHERE outbox.consumer = m.consumer AND outbox.event_key = m.event_key",
                    [c for c, _ in batch.marks], [k for _, k in batch.marks])
        except TRANSIENT as error:
            log.warning("marking %d outbox events published failed: %r", len(batch.marks), error)
    return True


async def _process_partition(service, producer, handle, stop, records, retry_seconds):
    """Returns the last record fully handled."""
    last = None
    for record in records:
        if stop.is_set():
            return last
        while True:
            try:
                await handle(record)
                break
            except BadInput as bad:
                await dead_letter(producer, service, record, str(bad))
                break
            except TOO_LARGE as error:
                await dead_letter(producer, service, record, f"an output record is over the broker's limit of"
                                  f" {MAX_MESSAGE_BYTES} bytes: {type(error).__name__}: {error}")
                break
            except TRANSIENT as error:
                log.warning("transient failure on %s@%d, retrying: %r", record.topic, record.offset, error)
                if stop.is_set():
                    return last
                await asyncio.sleep(retry_seconds)
            except Exception as error:  # a defect on this record must not stall its partition
                log.exception("unprocessable record %s@%d", record.topic, record.offset)
                await dead_letter(producer, service, record, f"unprocessable: {type(error).__name__}: {error}")
                break
        last = record
    return last


async def _commit(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, stop: asyncio.Event) -> None:
    await _commit_all(consumer, {tp: offset}, stop)


async def _commit_all(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int], stop: asyncio.Event) -> None:
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
