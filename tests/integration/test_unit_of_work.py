"""The unit of work's statements against the real PostgreSQL (relais.common.unit_of_work): an event is applied once,
and an event found processed is sent again only when it is the same record read again, not when its sender
published it twice; outbox.process_once's events keep the published mark."""

import uuid

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord

from relais.common import bus
from relais.common.unit_of_work import UnitOfWork


def record(offset: int, topic: str = "relais.test.v1", partition: int = 3) -> ConsumerRecord:
    return ConsumerRecord(topic, partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


@pytest.fixture
async def conn(postgres_dsn):
    connection = await asyncpg.connect(postgres_dsn)
    yield connection
    await connection.close()


async def unit_of(conn, consumer: str, keys: list[str], records: list[ConsumerRecord]) -> tuple[UnitOfWork, set[str]]:
    unit = UnitOfWork(consumer, conn)
    async with conn.transaction():
        new = await unit.first_time(keys, records)
        for key in sorted(new):
            unit.emit(key, [bus.Record("relais.out.v1", key.encode(), f"{key} #{n}".encode()) for n in range(2)])
        await unit.store()
    return unit, new


async def test_an_event_read_again_from_the_same_offset_is_sent_again_and_applied_once(conn):
    consumer, a, b = f"uow-{uuid.uuid4().hex[:8]}", "event-a", "event-b"
    first, new = await unit_of(conn, consumer, [a, b], [record(10), record(11)])
    assert new == {a, b} and [r.value for r in first.outputs] == [
        b"event-a #0",
        b"event-a #1",
        b"event-b #0",
        b"event-b #1",
    ]

    # The process died before its offsets were committed: the same records come again, and a new one after them.
    again, new = await unit_of(conn, consumer, [a, b, "event-c"], [record(10), record(11), record(12)])
    assert new == {"event-c"}
    assert [r.value for r in again.outputs] == [
        b"event-a #0",
        b"event-a #1",
        b"event-b #0",
        b"event-b #1",
        b"event-c #0",
        b"event-c #1",
    ]  # what came first, first
    assert await conn.fetchval("SELECT count(*) FROM outbox WHERE consumer = $1", consumer) == 6  # stored once


async def test_an_event_its_sender_published_twice_is_answered_once(conn):
    consumer = f"uow-{uuid.uuid4().hex[:8]}"
    await unit_of(conn, consumer, ["event-a"], [record(10)])
    copy, new = await unit_of(conn, consumer, ["event-a"], [record(42)])  # the same event id, another record
    assert new == set() and copy.outputs == []
    elsewhere, new = await unit_of(conn, consumer, ["event-a"], [record(10, partition=4)])
    assert new == set() and elsewhere.outputs == []


async def test_an_event_of_our_own_resends_only_what_was_not_marked_published(conn):
    consumer = f"uow-{uuid.uuid4().hex[:8]}"
    unit = UnitOfWork(consumer, conn, marks=[])
    async with conn.transaction():
        assert await unit.first_time(["alert-1"]) == {"alert-1"}
        unit.emit("alert-1", [bus.Record("relais.alerts.v1", b"k", b"raised")])
        await unit.store()
    assert unit.marks == ["alert-1"]
    assert not await conn.fetchval("SELECT published FROM outbox WHERE consumer = $1", consumer)

    retried = UnitOfWork(consumer, conn, marks=[])  # not marked: the broker may never have had it
    async with conn.transaction():
        assert await retried.first_time(["alert-1"]) == set()
    assert [r.value for r in retried.outputs] == [b"raised"]

    await conn.execute("UPDATE outbox SET published = true WHERE consumer = $1", consumer)
    marked = UnitOfWork(consumer, conn, marks=[])
    async with conn.transaction():
        assert await marked.first_time(["alert-1"]) == set()
    assert marked.outputs == []


async def test_the_services_connections_plan_each_statement_for_its_own_batch(postgres_dsn):
    """relais.common.db's pools plan every statement for its arguments (no generic plan costed on a young table),
    and keep doing so after asyncpg's reset when a connection goes back to the pool."""
    from relais.common import db

    pool = await db.connect(postgres_dsn, max_size=1)
    try:
        for _ in range(2):  # the second time on the connection the pool reset
            async with pool.acquire() as conn:
                assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
    finally:
        await pool.close()
