"""Process one event once, publish its outputs at least once, outside a consumed batch (a background job's event).

The same unit of work as a batch's (relais.common.unit_of_work), for a single event: in one database transaction,
record the event as processed, apply its state changes, store its outgoing records; then publish them and mark
them published. A repeated event finds itself already processed and only re-publishes what was not yet
acknowledged, so no state change is applied twice and no output is lost between the database commit and the broker.
"""

from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import AIOKafkaProducer

from relais.common.bus import Record, publish
from relais.common.unit_of_work import UnitOfWork, mark_published, stored_headers

Apply = Callable[[asyncpg.Connection], Awaitable[list[Record]]]


async def process_once(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, consumer: str, event_key: str, apply: Apply
) -> bool:
    """Runs `apply` once per (consumer, event_key); returns False for a duplicate."""
    async with pool.acquire() as conn:
        unit = UnitOfWork(consumer, conn, marks=[])
        async with conn.transaction():
            first_time = bool(await unit.first_time([event_key]))
            if first_time:
                unit.emit(event_key, await apply(conn))
            await unit.store()
        await publish(producer, unit.outputs)
        if unit.marks:
            await mark_published(conn, consumer, unit.marks)
    return first_time


async def publish_pending(pool: asyncpg.Pool, producer: AIOKafkaProducer, consumer: str, event_key: str) -> None:
    """Sends what `event_key` stored in the outbox and was not acknowledged yet, then marks it published (a
    decision committed before a crash, or one whose rows were written by a statement of its own)."""
    async with pool.acquire() as conn:
        pending = await conn.fetch(
            "SELECT topic, key, value, headers FROM outbox WHERE consumer = $1 AND event_key = $2"
            " AND NOT published ORDER BY seq",
            consumer,
            event_key,
        )
        if pending:
            await publish(
                producer, [Record(r["topic"], r["key"], r["value"], stored_headers(r["headers"])) for r in pending]
            )
            await mark_published(conn, consumer, [event_key])
