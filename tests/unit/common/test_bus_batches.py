"""The consume loop's unit of work per poll (relais.common.unit_of_work), with in-memory stand-ins for the broker and
the database: a batch read again after the database dropped its connection, a record that cannot be decoded
dead-lettered alone, a record found bad while handling dead-lettered alone (its batch handled one record at a time),
outputs sent before the offsets are committed."""

import asyncio

import asyncpg
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from relais.common import bus, topics
from relais.common.unit_of_work import UnitOfWork, _Loop

TP = TopicPartition("relais.test.v1", 0)


def record(offset: int, value: bytes = b"v") -> ConsumerRecord:
    return ConsumerRecord(TP.topic, TP.partition, offset, 0, 0, b"k", value, None, 1, 1, [])


class Transaction:
    def __init__(self, conn):
        self.conn = conn

    async def __aenter__(self):
        return self

    async def __aexit__(self, kind, error, tb):
        if error is not None:
            raise asyncpg.InterfaceError("connection is closed")  # asyncpg's rollback on a dropped connection
        self.conn.commits += 1


class Connection:
    def __init__(self):
        self.commits = 0

    def transaction(self):
        return Transaction(self)


class Pool:
    """Its first release fails the way asyncpg's does when the server closed the connection during a query."""

    def __init__(self):
        self.releases = 0
        self.conn = Connection()

    async def acquire(self):
        return self.conn

    async def release(self, conn):
        self.releases += 1
        if self.releases == 1:
            raise asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress")


class Consumer:
    def __init__(self):
        self.commits = []

    async def commit(self, offsets):
        self.commits.append(offsets)


class Producer:
    def __init__(self, log):
        self.log = log

    async def send(self, topic, value, key=None, headers=None):
        self.log.append(("sent", topic, value))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def decode(r: ConsumerRecord) -> bytes:
    if r.value == b"garbage":
        raise bus.BadInput("not a record of ours")
    return r.value


def loop(handle, consumer, pool=None, log=None) -> _Loop:
    return _Loop("test", consumer, Producer(log if log is not None else []), decode, handle, asyncio.Event(), pool, 0)


async def test_a_batch_retried_after_the_database_dropped_its_connection_is_committed():
    consumer, pool = Consumer(), Pool()
    seen: list[int] = []  # offsets handled

    async def handle(items, unit):
        seen.extend(i.record.offset for i in items)
        if len(seen) == 2:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")

    running = loop(handle, consumer, pool)
    await running.process([record(7), record(8)])
    await running.finish()
    assert seen == [7, 8, 7, 8]  # the failed batch read again from its first record
    assert consumer.commits == [{TP: 9}]
    assert pool.releases == 2  # the dropped connection given back (its failure logged, not raised), then the next


async def test_an_undecodable_record_is_dead_lettered_alone_and_the_batch_goes_on():
    consumer, log = Consumer(), []

    async def handle(items, unit: UnitOfWork):
        log.append(("handled", [i.record.offset for i in items]))
        unit.send([bus.Record("relais.out.v1", b"k", i.value) for i in items])

    running = loop(handle, consumer, log=log)
    await running.process([record(1), record(2, b"garbage"), record(3)])
    await running.finish()
    assert log == [
        ("handled", [1, 3]),
        ("sent", topics.DEAD_LETTER, b"garbage"),
        ("sent", "relais.out.v1", b"v"),
        ("sent", "relais.out.v1", b"v"),
    ]
    assert consumer.commits == [{TP: 4}]  # after every output was acknowledged


async def test_a_record_found_bad_while_handling_is_dead_lettered_alone():
    consumer, log = Consumer(), []

    async def handle(items, unit: UnitOfWork):
        log.append(("handled", [i.record.offset for i in items]))
        if any(i.value == b"bad" for i in items):
            raise bus.BadInput("survey for unknown conversation")
        unit.send([bus.Record("relais.out.v1", b"k", str(i.record.offset).encode()) for i in items])

    running = loop(handle, consumer, log=log)
    await running.process([record(1), record(2, b"bad"), record(3)])
    await running.finish()
    # Rolled back, then one record at a time; each one's outputs sent after the previous one's were acknowledged.
    assert [entry for entry in log if entry[0] == "sent"] == [
        ("sent", "relais.out.v1", b"1"),
        ("sent", topics.DEAD_LETTER, b"bad"),
        ("sent", "relais.out.v1", b"3"),
    ]
    assert [entry for entry in log if entry[0] == "handled"] == [
        ("handled", [1, 2, 3]),
        ("handled", [1]),
        ("handled", [2]),
        ("handled", [3]),
    ]
    assert consumer.commits == [{TP: 2}, {TP: 3}, {TP: 4}]


def test_key_partitioner_places_every_key_where_the_default_does():
    """Remembering a key's hash changes no placement: a conversation stays on the partition any Kafka client picks."""
    from aiokafka.partitioner import DefaultPartitioner

    partitioner = bus.KeyPartitioner()
    partitioner.KEYS = 50  # forgetting is exercised too
    keys = [f"conversation-{n}".encode() for n in range(300)] + [b"", "é-客服".encode()]
    for count in (1, 3, 6, 12):
        every = list(range(count))
        for _ in range(2):  # hashed, then remembered
            assert [partitioner(k, every, every) for k in keys] == [DefaultPartitioner()(k, every, every) for k in keys]
    assert len(partitioner.hashes) <= 50
    assert partitioner(None, [0, 1, 2], [2]) == 2  # no key: one of the available partitions, as the default


def test_a_record_that_is_not_the_protobuf_says_what_it_is_not():
    from relais.common.pb import conversation_pb2 as pb

    turn = pb.Turn(turn_id="t1", conversation_id="c1")
    assert bus.parse(pb.Turn, turn.SerializeToString()) == turn
    assert bus.parse(pb.Turn, None) == pb.Turn()  # an empty value is an empty message: the handler's checks decide
    with pytest.raises(bus.BadInput, match=r"^bad protobuf: data is not a relais\.v1\.Turn \("):
        bus.parse(pb.Turn, b"\xff\xff\xff", "data is ")


class HeldProducer:
    """Acknowledges nothing until told: shows what was sent while earlier records still await the broker."""

    def __init__(self):
        self.sent: list[str] = []
        self.acks: dict[str, asyncio.Future] = {}

    async def send(self, topic, value, key=None, headers=None):
        self.sent.append(value.decode())
        self.acks[value.decode()] = asyncio.get_running_loop().create_future()
        return self.acks[value.decode()]

    def acknowledge(self, *values: str) -> None:
        for value in values or list(self.acks):
            if not self.acks[value].done():
                self.acks[value].set_result(None)


async def test_hand_offs_are_sent_once_the_notices_before_them_were_acknowledged():
    producer = HeldProducer()
    records = [
        bus.Record(topics.REPLIES, b"c1", b"notice c1"),
        bus.Record(topics.HANDOFFS, b"c1", b"handoff c1"),
        bus.Record(topics.OUTCOMES, b"c1", b"outcome c1"),
        bus.Record(topics.HANDOFFS, b"c3", b"message c3"),
        bus.Record(topics.REPLIES, b"c2", b"answer c2"),
    ]
    publishing = asyncio.create_task(bus.publish(producer, records))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert producer.sent == ["notice c1", "outcome c1", "answer c2"], "the hand-offs topic waits, all of it, in order"
    producer.acknowledge("notice c1", "outcome c1")
    await asyncio.sleep(0)
    assert "handoff c1" not in producer.sent, "every record sent first is acknowledged before"
    producer.acknowledge("answer c2")
    for _ in range(3):
        await asyncio.sleep(0)
    assert producer.sent[3:] == ["handoff c1", "message c3"]
    assert not publishing.done(), "and their own acknowledgements are awaited"
    producer.acknowledge()
    await publishing


async def test_a_batch_without_a_notice_before_a_hand_off_is_sent_in_one_go():
    producer = HeldProducer()
    records = [
        bus.Record(topics.HANDOFFS, b"c1", b"message c1"),
        bus.Record(topics.REPLIES, b"c1", b"goodbye c1"),  # after: nothing to wait for
        bus.Record(topics.REPLIES, b"c2", b"notice c2"),
        bus.Record(topics.HANDOFFS, b"c3", b"handoff c3"),  # another conversation's notice does not hold it
    ]
    publishing = asyncio.create_task(bus.publish(producer, records))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert producer.sent == ["message c1", "goodbye c1", "notice c2", "handoff c3"]
    producer.acknowledge()
    await publishing
