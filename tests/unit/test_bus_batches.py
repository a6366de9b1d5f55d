"""The batched consume loop survives a database that goes away mid-batch: the failed batch is read again and the
connection the server dropped is not allowed to stop the service when it goes back to the pool."""

import asyncio

import asyncpg
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from relais.common import bus

TP = TopicPartition("relais.test.v1", 0)


def record(offset: int) -> ConsumerRecord:
    return ConsumerRecord(TP.topic, TP.partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


class Transaction:
    async def start(self): pass
    async def commit(self): pass
    async def rollback(self): raise asyncpg.InterfaceError("connection is closed")


class Connection:
    def transaction(self): return Transaction()


class Pool:
    """Its first release fails the way asyncpg's does when the server closed the connection during a query."""

    def __init__(self):
        self.releases = 0

    async def acquire(self): return Connection()

    async def release(self, conn):
        self.releases += 1
        if self.releases == 1:
            raise asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress")


class Consumer:
    def __init__(self): self.commits = []
    async def commit(self, offsets): self.commits.append(offsets)


async def test_a_batch_retried_after_the_database_dropped_its_connection_is_committed():
    consumer, pool, seen = Consumer(), Pool(), []

    async def handle(r):
        seen.append(r.offset)
        if len(seen) == 1:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")

    await bus._process_batched("test", consumer, None, handle, asyncio.Event(), {TP: [record(7), record(8)]}, 0, pool, 1.0)
    assert seen == [7, 7, 8]  # the failed batch read again from its first record
    assert consumer.commits == [{TP: 9}]
    assert pool.releases == 2
