"""One unit of work per batch of consumed records: one transaction, set-based statements, outputs sent after it.

A service's batch handler receives the records of a poll, decoded, and does its database work for all of them
at once (one statement per table, with `unnest` arrays); the unit gives it the pieces every service needs:

- `first_time(keys, records)`: one statement records the batch's events as processed (with where each was read)
  and says which are new. An event already processed is sent again only when it is the same record read again
  (its offset was never committed: its outputs may never have reached the broker), never when a sender published
  the same event twice; so nothing is lost and nothing is applied twice.
- `emit(key, records)`: the outputs of event `key`, stored in the outbox in the same transaction (one insert
  for the batch) and sent once it committed.
- `send(records)`: outputs that need no outbox (a stateless hop: deterministic, recomputed on redelivery).

`consume_batches`, the loop, commits the transaction, sends every output in order, waits for the broker's
acknowledgements, and only then commits the consumer offsets. The next unit's transaction runs meanwhile.
Before a rebalance moves partitions away, the unit in hand is finished, sent and committed (`Revocations`).
A record its service cannot decode is dead-lettered alone; a batch that fails on the database or the broker is
rolled back and tried again; one that fails otherwise (input found bad while handling, a defect) is rolled back
and its records handled one by one, so that only the bad one is dead-lettered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord
from aiokafka.errors import MessageSizeTooLargeError

from relais.common import bus, metrics
from relais.common.bus import MAX_MESSAGE_BYTES, Record, record_size

log = logging.getLogger(__name__)


@dataclass
class Item:
    """A consumed record and what the service's `decode` made of it."""

    record: ConsumerRecord
    value: Any

    @property
    def key(self) -> bytes:
        return self.record.key or b""


@dataclass
class UnitOfWork:
    consumer: str  # the name under which processed events and outbox rows are kept (the service's)
    conn: asyncpg.Connection | None = None  # in a transaction; None for a service without a database
    outputs: list[Record] = field(default_factory=list)  # in order, sent after the commit
    stored: list[tuple[str, int, Record]] = field(default_factory=list)  # (event key, seq, record) for the outbox
    emitted: dict[str, int] = field(default_factory=dict)  # event key -> how many outputs it has so far
    # Events read from a topic: what was sent is known from the offsets (see first_time), the outbox rows need no
    # mark. An event of our own (outbox.process_once) has its rows marked published once the broker took them.
    marks: list[str] | None = None  # event keys to mark published once sent; None for events read from a topic
    # For the metrics (relais.common.metrics), counted once its outputs were sent: records found processed already
    # (topic -> n), the topics of those dead-lettered (one each), and the handler's business counts.
    duplicates: dict[str, int] = field(default_factory=dict)
    dead: list[str] = field(default_factory=list)
    tally: Counter = field(default_factory=Counter)  # (metrics.Counter, label value) -> n

    @property
    def db(self) -> asyncpg.Connection:
        """The unit's connection, in a service with a database."""
        if self.conn is None:
            raise RuntimeError(f"{self.consumer}: a unit of work without a database connection")
        return self.conn

    async def first_time(self, keys: Sequence[str], records: Sequence[ConsumerRecord] = ()) -> set[str]:
        """Records `keys` (read from `records`, one each) as processed by this consumer; returns those not processed
        before. For the others, the outputs are staged again (before anything this unit emits, as they came first)
        when the same record is read again — its offset was never committed, so they may never have reached the
        broker — but not for an event published twice by its sender, whose first copy was answered."""
        if not keys:
            return set()
        positions = [f"{r.topic}:{r.partition}:{r.offset}" for r in records] or [""] * len(keys)
        new = {
            r[0]
            for r in await self.db.fetch(
                "INSERT INTO processed_events (consumer, event_key, position) SELECT $1, * FROM unnest($2::text[], $3::text[])"
                " ON CONFLICT DO NOTHING RETURNING event_key",
                self.consumer,
                list(keys),
                positions,
            )
        }
        seen = {k: p for k, p in zip(keys, positions) if k not in new}
        if seen:
            for position in seen.values():
                if position:
                    topic = position.rsplit(":", 2)[0]
                    self.duplicates[topic] = self.duplicates.get(topic, 0) + 1
            rows = await self.db.fetch(
                "SELECT o.event_key, o.topic, o.key, o.value, o.headers"
                " FROM unnest($2::text[], $3::text[]) AS r(event_key, position)"
                " JOIN processed_events p ON p.consumer = $1 AND p.event_key = r.event_key"
                " JOIN outbox o ON o.consumer = $1 AND o.event_key = r.event_key"
                " WHERE (p.position = r.position AND p.position <> '') OR (p.position = '' AND NOT o.published)"
                " ORDER BY o.event_key, o.seq",
                self.consumer,
                list(seen),
                list(seen.values()),
            )
            again: dict[str, list[Record]] = {}
            for r in rows:
                again.setdefault(r["event_key"], []).append(
                    Record(r["topic"], r["key"], r["value"], stored_headers(r["headers"]))
                )
            for key in seen:
                self.outputs.extend(again.get(key, ()))
                if self.marks is not None and key in again:
                    self.marks.append(key)
        return new

    def emit(self, key: str, records: Sequence[Record]) -> None:
        """Outputs of event `key` (after those it already emitted): kept in the outbox with this unit's transaction,
        sent after it committed."""
        _check_sizes(records)
        first = self.emitted.get(key, 0)
        self.stored.extend((key, first + n, r) for n, r in enumerate(records))
        self.emitted[key] = first + len(records)
        self.outputs.extend(records)
        if records and self.marks is not None:
            self.marks.append(key)

    def send(self, records: Sequence[Record]) -> None:
        """Outputs sent after the commit, without the outbox."""
        _check_sizes(records)
        self.outputs.extend(records)

    async def store(self) -> None:
        """The outbox rows of everything emitted, in one statement (called by the loop before the commit)."""
        if not self.stored:
            return
        await self.db.execute(
            "INSERT INTO outbox (consumer, event_key, seq, topic, key, value, headers, published)"
            " SELECT $1, *, $8 FROM unnest($2::text[], $3::int[], $4::text[], $5::bytea[], $6::bytea[], $7::text[])",
            self.consumer,
            [k for k, _, _ in self.stored],
            [s for _, s, _ in self.stored],
            [r.topic for _, _, r in self.stored],
            [r.key for _, _, r in self.stored],
            [r.value for _, _, r in self.stored],
            [headers_json(r.headers) for _, _, r in self.stored],
            self.marks is None,
        )


def _check_sizes(records: Sequence[Record]) -> None:
    """Refused now, so that the record that produced it is the one dead-lettered."""
    for r in records:
        if not bus.fits(r.key, r.value, r.headers):
            raise MessageSizeTooLargeError(f"a {record_size(r.key, r.value, r.headers)}-byte record for {r.topic}")


def headers_json(headers: list[tuple[str, bytes]]) -> str:
    """Kafka headers as the outbox keeps them (JSON text: [[name, value], ...])."""
    return json.dumps([[k, v.decode("utf-8", "replace")] for k, v in headers])


def stored_headers(stored: str) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in json.loads(stored)]


Decode = Callable[[ConsumerRecord], Any]  # raises bus.BadInput
BatchHandler = Callable[[list[Item], UnitOfWork], Awaitable[None]]


async def consume_batches(
    service: str,
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    decode: Decode,
    handle: BatchHandler,
    stop: asyncio.Event,
    pool: asyncpg.Pool | None = None,
    retry_seconds: float = 0.5,
    one_at_a_time: bool = False,
    revocations: "Revocations | None" = None,
    group: str = "",
) -> None:
    """Each poll's records (every partition's, each partition's in order) are one unit of work, until `stop`.
    `one_at_a_time` (RELAIS_BATCH=off): a unit per record, the cost of a record-by-record design, for comparison.
    `revocations`, the consumer's rebalance listener: partitions leave only once their units are sent and committed.
    `group`: the consumer group, as the lag metric names it."""
    loop = _Loop(service, consumer, producer, decode, handle, stop, pool, retry_seconds)
    loop.metrics = metrics.watch_loop(service, group, consumer)
    if revocations is not None:
        revocations.loop = loop
    try:
        while not stop.is_set():
            polled = await consumer.getmany(timeout_ms=200, max_records=500)
            if loop.metrics is not None and polled:
                loop.metrics.polled(polled)
            records = [r for rs in polled.values() for r in rs]
            async with loop.busy:
                for unit in ([r] for r in records) if one_at_a_time else [records] if records else []:
                    await loop.process(unit)
    finally:
        metrics.unwatch(loop.metrics)
        await loop.finish()


class Revocations(ConsumerRebalanceListener):
    """Before its partitions go to another process (one joins or leaves the group), this one finishes the unit in
    hand, has its outputs acknowledged and commits its offsets: the new owner starts where this one stopped, and sends
    nothing twice."""

    def __init__(self):
        self.loop: _Loop | None = None

    async def on_partitions_revoked(self, revoked) -> None:
        if self.loop is not None and revoked:
            await self.loop.settle()
            if self.loop.metrics is not None:
                self.loop.metrics.revoked(revoked)

    async def on_partitions_assigned(self, assigned) -> None:
        pass


@dataclass
class _Loop:
    """Units overlap where order allows: a unit's transaction runs while the previous unit's outputs await the
    broker's acknowledgement; its outputs are sent only once those were acknowledged (order per partition); the
    offsets are committed, in order, once a unit's outputs were acknowledged, without holding up the next unit."""

    service: str
    consumer: AIOKafkaConsumer
    producer: AIOKafkaProducer
    decode: Decode
    handle: BatchHandler
    stop: asyncio.Event
    pool: asyncpg.Pool | None
    retry_seconds: float
    conn: asyncpg.Connection | None = None  # held across batches: giving it back to the pool costs 4 statements
    flushing: asyncio.Task | None = None  # the previous unit's outputs being sent, then its offsets committed
    committing: asyncio.Task | None = None  # committing the offsets of the units sent, until none is left
    offsets: dict = field(default_factory=dict)  # partition -> next offset: sent, not committed yet
    busy: asyncio.Lock = field(default_factory=asyncio.Lock)  # held while a poll's records are in hand
    metrics: metrics.LoopMetrics | None = None  # None: metrics off

    async def process(self, records: list[ConsumerRecord]) -> None:
        while not self.stop.is_set():
            unit = UnitOfWork(self.service)
            items = self._decode(records, unit)
            try:
                await self._run(unit, items)
            except Exception as error:
                if isinstance(error, bus.TRANSIENT) and not isinstance(error, bus.TOO_LARGE):
                    log.warning("transient failure in a batch of %d records, retrying it: %r", len(records), error)
                    await self._lost_connection(error)
                    await asyncio.sleep(self.retry_seconds)
                    continue
                # Input found bad while handling, an output over the broker's limit, or a defect: sorted out one
                # record at a time, so that only that record is dead-lettered.
                await self._one_by_one(records)
                return
            await self._send_after_previous(unit, records)
            return

    async def settle(self) -> None:
        """Waits until no unit is in hand, its outputs acknowledged and its offsets committed."""
        async with self.busy:
            await self._drain()

    async def _drain(self) -> None:
        """The unit in flight sent and its offsets committed (if that can still be done when stopping)."""
        await self._previous_sent()
        if self.committing is not None:
            await self.committing

    def _decode(self, records: list[ConsumerRecord], unit: UnitOfWork) -> list[Item]:
        items = []
        for record in records:
            try:
                items.append(Item(record, self.decode(record)))
            except bus.BadInput as bad:
                unit.send([bus.dead_letter_record(self.service, record, str(bad))])
                unit.dead.append(record.topic)
        return items

    async def _run(self, unit: UnitOfWork, items: list[Item]) -> None:
        """The handler and the outbox insert in one transaction (rolled back when either raises)."""
        if self.metrics is not None:
            started = time.perf_counter()
            try:
                await self._handle(unit, items)
            finally:
                self.metrics.handled(time.perf_counter() - started)
            return
        await self._handle(unit, items)

    async def _handle(self, unit: UnitOfWork, items: list[Item]) -> None:
        if self.pool is None:
            if items:
                await self.handle(items, unit)
            return
        if self.conn is None:
            self.conn = await self.pool.acquire()
        unit.conn = self.conn
        async with self.conn.transaction():
            if items:
                await self.handle(items, unit)
            await unit.store()

    async def _send_after_previous(self, unit: UnitOfWork, records: list[ConsumerRecord]) -> None:
        if not await self._previous_sent():
            return
        self.flushing = asyncio.create_task(self._flush_and_commit(unit, records))

    async def _previous_sent(self) -> bool:
        """Waits for the previous unit's outputs; False when they could not be sent before stopping."""
        if self.flushing is None:
            return True
        flushing, self.flushing = self.flushing, None
        return await flushing

    async def _flush_and_commit(self, unit: UnitOfWork, records: list[ConsumerRecord]) -> bool:
        if not await self._flush(unit):
            return False
        for r in records:  # in order: the last offset of each partition wins
            self.offsets[bus.TopicPartition(r.topic, r.partition)] = r.offset + 1
        if self.metrics is not None:
            self.metrics.done(records, unit, self.offsets)
        if self.committing is None or self.committing.done():
            self.committing = asyncio.create_task(self._commit())
        return True

    async def _commit(self) -> None:
        """Commits what was sent, in order; the units sent during a commit are committed together by the next one
        (fewer requests to the broker when commits are slower than units)."""
        while self.offsets:
            offsets, self.offsets = self.offsets, {}
            await bus.commit_offsets(self.consumer, offsets, self.stop)

    async def _one_by_one(self, records: list[ConsumerRecord]) -> None:
        for record in records:
            while True:
                if self.stop.is_set():
                    return  # not committed: delivered again
                unit = UnitOfWork(self.service)
                try:
                    await self._run(unit, self._decode([record], unit))
                except bus.TOO_LARGE as error:
                    unit = self._dead(
                        record,
                        f"an output record is over the broker's limit of {MAX_MESSAGE_BYTES}"
                        f" bytes: {type(error).__name__}: {error}",
                    )
                except bus.TRANSIENT as error:
                    log.warning("transient failure on %s@%d, retrying: %r", record.topic, record.offset, error)
                    await self._lost_connection(error)
                    await asyncio.sleep(self.retry_seconds)
                    continue
                except bus.BadInput as bad:
                    unit = self._dead(record, str(bad))
                except Exception as error:  # a defect on this record must not stall its partition
                    log.exception("unprocessable record %s@%d", record.topic, record.offset)
                    unit = self._dead(record, f"unprocessable: {type(error).__name__}: {error}")
                await self._send_after_previous(unit, [record])
                break

    def _dead(self, record: ConsumerRecord, reason: str) -> UnitOfWork:
        unit = UnitOfWork(self.service)
        unit.send([bus.dead_letter_record(self.service, record, reason)])
        unit.dead.append(record.topic)
        return unit

    async def _flush(self, unit: UnitOfWork) -> bool:
        """Sends the unit's outputs in order until the broker acknowledged them all (False: stopping first)."""
        while True:
            try:
                await bus.publish(self.producer, unit.outputs)
                return True
            except bus.TRANSIENT as error:
                log.warning("publishing a batch of %d records failed, retrying: %r", len(unit.outputs), error)
                if self.stop.is_set():
                    return False  # not committed: delivered again, deduplicated
                await asyncio.sleep(self.retry_seconds)

    async def _lost_connection(self, error: BaseException) -> None:
        """A connection the database dropped is closed; the next batch takes another from the pool."""
        if isinstance(error, bus.CONNECTION_LOST):
            await self._give_back(self.conn)
            self.conn = None

    async def finish(self) -> None:
        """On stop: what is in flight drained, the connection given back."""
        try:
            await self._drain()
        finally:
            await self._give_back(self.conn)
            self.conn = None

    async def _give_back(self, conn: asyncpg.Connection | None) -> None:
        if conn is not None and self.pool is not None:
            try:
                await self.pool.release(conn)
            except Exception as error:  # the server went away mid-query: asyncpg closed it, the pool opens another
                log.warning("a database connection was not released cleanly (closed instead): %r", error)


async def mark_published(conn: asyncpg.Connection, consumer: str, keys: list[str]) -> None:
    """Rows of events of our own (outbox.process_once, routing's decisions), once the broker acknowledged them: a
    lost mark only re-sends them."""
    await conn.execute(
        "UPDATE outbox SET published = true WHERE consumer = $1 AND event_key = ANY($2::text[]) AND NOT published",
        consumer,
        keys,
    )
